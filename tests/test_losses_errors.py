"""Losses: argument checks, the shared masking rule (NaN / null_value / mask) and detached teachers."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kdlib import (
    distillation_loss,
    distillation_loss_cached,
    kd_loss,
    l1_loss,
    logit_distillation_loss,
    logit_matching_loss,
    masked_mae,
    output_distillation_loss,
    softmax_t,
    teacher_bounded_loss,
    valid_mask,
)

# --- argument checks ---


@pytest.mark.parametrize("T", [0.0, -1.0])
def test_bad_temperature_raises(T):
    with pytest.raises(ValueError, match="temperature T must be > 0"):
        kd_loss(torch.randn(2, 3), torch.randn(2, 3), T)
    with pytest.raises(ValueError, match="temperature"):
        softmax_t(torch.randn(2, 3), T)


@pytest.mark.parametrize("T", [0.0, -2.0])
def test_distillation_loss_with_alpha_zero_still_checks_temperature_and_shapes(T):
    y = torch.tensor([0, 1])
    with pytest.raises(ValueError, match="temperature T must be > 0"):
        distillation_loss(torch.randn(2, 3), y, torch.randn(2, 3), T=T, alpha=0.0)
    with pytest.raises(ValueError, match="temperature T must be > 0"):
        distillation_loss_cached(torch.randn(2, 3), y, torch.rand(2, 3), T=T, alpha=0.0)
    with pytest.raises(ValueError, match="shapes differ"):
        distillation_loss(torch.randn(2, 3), y, torch.randn(2, 4), alpha=0.0)


@pytest.mark.parametrize("alpha", [-0.1, 1.5, float("nan")])
def test_bad_alpha_raises_everywhere(alpha):
    z, y, v = torch.randn(2, 3), torch.tensor([0, 1]), torch.randn(2, 3)
    for loss in (distillation_loss, distillation_loss_cached, logit_distillation_loss):
        with pytest.raises(ValueError, match="alpha must lie in"):
            loss(z, y, v, alpha=alpha)
    with pytest.raises(ValueError, match="alpha must lie in"):
        output_distillation_loss(torch.randn(2), torch.rand(2) + 1, torch.randn(2), alpha=alpha)


@pytest.mark.parametrize("kw", [{"nu": -1.0}, {"margin": -0.5}, {"nu": float("nan")}])
def test_teacher_bounded_loss_rejects_negative_weight_and_margin(kw):
    with pytest.raises(ValueError, match="must be >= 0"):
        teacher_bounded_loss(torch.randn(4), torch.rand(4) + 1, torch.randn(4), **kw)


def test_mismatched_shapes_raise():
    with pytest.raises(ValueError, match="shapes differ"):
        kd_loss(torch.randn(2, 10), torch.randn(2, 9), 2.0)
    with pytest.raises(ValueError, match="shapes differ"):
        logit_matching_loss(torch.randn(3, 10), torch.randn(2, 10))
    with pytest.raises(ValueError, match="labels must have shape"):
        distillation_loss(torch.randn(2, 10), torch.tensor([1, 2, 3]), torch.randn(2, 10))
    with pytest.raises(ValueError, match="same shape"):
        l1_loss(torch.randn(4, 3), torch.randn(4, 2))


def test_mask_must_have_the_target_shape_exactly():
    """A (12, 3) mask on a (4, 12, 3) target raises instead of broadcasting."""
    pred, target, teacher = torch.randn(4, 12, 3), torch.rand(4, 12, 3) + 1, torch.randn(4, 12, 3)
    mask = torch.ones(12, 3)
    with pytest.raises(ValueError, match="mask shape"):
        l1_loss(pred, target, mask)
    with pytest.raises(ValueError, match="mask shape"):
        output_distillation_loss(pred, target, teacher, mask=mask)
    with pytest.raises(ValueError, match="mask shape"):
        teacher_bounded_loss(pred, target, teacher, mask=mask)


# --- one masking rule for training losses and metrics ---


@pytest.fixture
def forecast():
    rng = np.random.default_rng(1)
    target = rng.uniform(20, 70, size=(4, 12, 3))
    target[0, 0, 0] = 0.0  # a dead detector
    target[1, 2, :] = np.nan  # missing labels
    pred = target + rng.normal(0, 3, size=target.shape)
    pred[np.isnan(pred)] = 50.0
    teacher = target + rng.normal(0, 2, size=target.shape)
    teacher[np.isnan(teacher)] = 45.0
    mask = np.ones(target.shape, dtype=bool)
    mask[3] = False
    return pred, target, teacher, mask


def test_l1_loss_skips_nan_and_null_labels_like_the_metric(forecast):
    pred, target, _, mask = forecast
    valid = ~np.isnan(target) & (target != 0)
    p, t, m = torch.tensor(pred, requires_grad=True), torch.tensor(target), torch.tensor(mask)
    loss = l1_loss(p, t)
    assert loss.item() == pytest.approx(np.abs(pred - target)[valid].mean())
    assert loss.item() == pytest.approx(masked_mae(p.detach(), t))
    loss.backward()
    assert torch.isfinite(p.grad).all()
    assert (p.grad[torch.tensor(~valid)] == 0).all()
    assert l1_loss(p, t, m).item() == pytest.approx(np.abs(pred - target)[valid & mask].mean())
    assert l1_loss(p, t, m).item() == pytest.approx(masked_mae(p.detach(), t, m))
    keep_zero = ~np.isnan(target)
    assert l1_loss(p, t, null_value=None).item() == pytest.approx(np.abs(pred - target)[keep_zero].mean())


def test_output_distillation_loss_masks_labels_not_the_teacher(forecast):
    pred, target, teacher, mask = forecast
    teacher[2, 0, 1] = np.nan  # one missing teacher forecast
    valid = ~np.isnan(target) & (target != 0) & mask
    has_teacher = ~np.isnan(teacher)
    p = torch.tensor(pred, requires_grad=True)
    for power in (1, 2):
        label_term = (np.abs(pred - target) ** power)[valid].mean()
        teacher_term = (np.abs(pred - teacher) ** power)[has_teacher].mean()
        loss = output_distillation_loss(p, torch.tensor(target), torch.tensor(teacher), 0.3, power, torch.tensor(mask))
        assert loss.item() == pytest.approx(0.3 * teacher_term + 0.7 * label_term)
        p.grad = None
        loss.backward()
        assert torch.isfinite(p.grad).all()


def test_teacher_bounded_loss_skips_missing_labels(forecast):
    pred, target, teacher, _ = forecast
    valid = ~np.isnan(target) & (target != 0)
    e_s, e_t = np.abs(pred - target)[valid] ** 2, np.abs(teacher - target)[valid] ** 2
    expected = e_s.mean() + 0.5 * np.where(e_s + 1.0 > e_t, e_s, 0).mean()
    p = torch.tensor(pred, requires_grad=True)
    loss = teacher_bounded_loss(p, torch.tensor(target), torch.tensor(teacher), margin=1.0, nu=0.5, p=2)
    assert loss.item() == pytest.approx(expected)
    loss.backward()
    assert torch.isfinite(p.grad).all()


def test_a_batch_without_valid_labels_gives_a_zero_that_carries_a_gradient():
    pred = torch.randn(2, 3, requires_grad=True)
    target = torch.tensor([[float("nan"), 0.0, 0.0], [float("nan")] * 3])
    for loss in (l1_loss(pred, target), teacher_bounded_loss(pred, target, torch.randn(2, 3))):
        assert loss.item() == 0.0 and loss.requires_grad
    teacher = torch.randn(2, 3)
    out = output_distillation_loss(pred, target, teacher, alpha=0.5)
    assert out.item() == pytest.approx(0.5 * (pred - teacher).abs().mean().item())


def test_valid_mask_is_the_shared_rule():
    t = torch.tensor([0.0, float("nan"), 5.0, 7.0])
    assert valid_mask(t).tolist() == [False, False, True, True]
    assert valid_mask(t, null_value=None).tolist() == [True, False, True, True]
    assert valid_mask(t, torch.tensor([1, 1, 1, 0])).tolist() == [False, False, True, False]


def test_the_losses_fast_path_agrees_with_valid_mask():
    from kdlib.metrics import _all_valid

    inf, nan = float("inf"), float("nan")
    for values in ([1.0, 2.0], [1.0, 0.0], [1.0, nan], [inf, 2.0], [inf, -inf], [3.0, -3.0], [5.0, 7.0]):
        t = torch.tensor(values)
        for null_value in (0.0, None, 5.0):
            all_valid = bool(valid_mask(t, null_value=null_value).all())
            # never True wrongly; False only costs the masked path (here: only +inf with -inf, whose sum is NaN)
            assert _all_valid(t, null_value) == all_valid or (all_valid and values == [inf, -inf]), (values, null_value)


# --- the teacher is a fixed target ---


def test_a_live_teacher_gets_no_gradient():
    torch.manual_seed(0)
    student, teacher = torch.nn.Linear(5, 4), torch.nn.Linear(5, 4)
    x, y = torch.randn(6, 5), torch.tensor([0, 1, 2, 3, -1, 0])
    losses = {
        "kd_loss": lambda s, t: kd_loss(s, t, 3.0),
        "distillation_loss": lambda s, t: distillation_loss(s, y, t),
        "logit_distillation_loss": lambda s, t: logit_distillation_loss(s, y, t),
        "output_distillation_loss": lambda s, t: output_distillation_loss(s, s.detach() + 1, t),
    }
    for name, loss_fn in losses.items():
        student.zero_grad(set_to_none=True)
        teacher.zero_grad(set_to_none=True)
        loss_fn(student(x), teacher(x)).backward()
        assert teacher.weight.grad is None, name
        assert student.weight.grad is not None and student.weight.grad.abs().sum() > 0, name
    # The cached soft targets of a live teacher: no gradient either.
    student.zero_grad(set_to_none=True)
    distillation_loss_cached(student(x), y, F.softmax(teacher(x) / 4.0, -1)).backward()
    assert teacher.weight.grad is None and student.weight.grad is not None
