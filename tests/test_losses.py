"""Losses against their formulas computed by hand, and gradients against the derivation."""

import math

import pytest
import torch
import torch.nn.functional as F

from kdlib import (
    HintLoss,
    distillation_loss,
    kd_loss,
    logit_matching_loss,
    output_distillation_loss,
    softmax_t,
    teacher_bounded_loss,
)

torch.manual_seed(0)


def test_softmax_t_by_hand():
    z = torch.tensor([[1.0, 2.0, 3.0]])
    T = 2.0
    e = [math.exp(v / T) for v in (1.0, 2.0, 3.0)]
    expected = torch.tensor([[v / sum(e) for v in e]])
    torch.testing.assert_close(softmax_t(z, T), expected)


def test_kd_loss_equals_formula_by_hand():
    z = torch.randn(5, 10, dtype=torch.float64)
    v = torch.randn(5, 10, dtype=torch.float64) * 3
    T = 3.0
    total = 0.0
    for b in range(5):
        ez = [math.exp(x / T) for x in z[b].tolist()]
        ev = [math.exp(x / T) for x in v[b].tolist()]
        q = [x / sum(ez) for x in ez]
        p = [x / sum(ev) for x in ev]
        total += sum(pi * (math.log(pi) - math.log(qi)) for pi, qi in zip(p, q))
    expected = T * T * total / 5
    assert kd_loss(z, v, T).item() == pytest.approx(expected, rel=1e-10)


def test_kd_loss_zero_when_student_equals_teacher():
    v = torch.randn(4, 10, generator=torch.Generator().manual_seed(0))
    assert kd_loss(v.clone(), v, 4.0).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("T", [1.0, 2.5, 10.0])
def test_soft_cross_entropy_gradient_is_q_minus_p_over_T(T):
    """dC/dz_i = (1/T)(q_i - p_i) for C = -sum_i p_i log q_i (one sample)."""
    z = torch.randn(10, dtype=torch.float64, requires_grad=True)
    v = torch.randn(10, dtype=torch.float64)
    p = F.softmax(v / T, dim=-1)
    C = -(p * F.log_softmax(z / T, dim=-1)).sum()
    (grad,) = torch.autograd.grad(C, z)
    q = F.softmax(z.detach() / T, dim=-1)
    torch.testing.assert_close(grad, (q - p) / T)


def test_kd_loss_gradient_is_T_times_q_minus_p_over_batch():
    T, B = 4.0, 6
    z = torch.randn(B, 10, dtype=torch.float64, requires_grad=True)
    v = torch.randn(B, 10, dtype=torch.float64)
    (grad,) = torch.autograd.grad(kd_loss(z, v, T), z)
    q, p = F.softmax(z.detach() / T, -1), F.softmax(v / T, -1)
    torch.testing.assert_close(grad, T * (q - p) / B)


def test_high_temperature_gradient_approaches_logit_matching():
    """For zero-mean logits, (1/T)(q - p) -> (z - v) / (N T^2) as T grows."""
    N = 10
    z = torch.randn(N, dtype=torch.float64)
    v = torch.randn(N, dtype=torch.float64) * 2
    z, v = z - z.mean(), v - v.mean()
    rel = []
    for T in (5.0, 50.0, 500.0):
        zz = z.clone().requires_grad_(True)
        C = -(F.softmax(v / T, -1) * F.log_softmax(zz / T, -1)).sum()
        (grad,) = torch.autograd.grad(C, zz)
        approx = (z - v) / (N * T * T)
        rel.append(((grad - approx).norm() / approx.norm()).item())
    assert rel[0] > rel[1] > rel[2]
    assert rel[2] < 1e-2


def test_distillation_loss_combines_terms_with_alpha_on_soft_term():
    z, v = torch.randn(8, 10), torch.randn(8, 10)
    y = torch.randint(0, 10, (8,))
    T, a = 3.0, 0.7
    expected = a * kd_loss(z, v, T) + (1 - a) * F.cross_entropy(z, y)
    torch.testing.assert_close(distillation_loss(z, y, v, T=T, alpha=a), expected)
    torch.testing.assert_close(distillation_loss(z, y, v, T=T, alpha=0.0), F.cross_entropy(z, y))


def test_logit_matching_by_hand():
    z, v = torch.tensor([[1.0, -1.0]]), torch.tensor([[0.0, 1.0]])
    assert logit_matching_loss(z, v).item() == pytest.approx(0.5 * (1 + 4) / 2)


def test_hint_loss_trains_its_regressor():
    torch.manual_seed(0)
    hint = HintLoss(4, 6)
    s = torch.randn(32, 4)
    t = s @ torch.randn(4, 6)
    opt = torch.optim.Adam(hint.parameters(), lr=0.05)
    first = hint(s, t).item()
    for _ in range(200):
        opt.zero_grad()
        loss = hint(s, t)
        loss.backward()
        opt.step()
    assert loss.item() < 0.01 * first


def test_output_distillation_by_hand():
    pred = torch.tensor([11.0, 12.0])
    y = torch.tensor([10.0, 10.0])
    t = torch.tensor([11.0, 14.0])
    # L1: teacher term mean(|0|,|2|)=1, label term mean(1,2)=1.5
    assert output_distillation_loss(pred, y, t, alpha=0.25, p=1).item() == pytest.approx(0.25 * 1 + 0.75 * 1.5)
    # L2: teacher term (0+4)/2=2, label term (1+4)/2=2.5
    assert output_distillation_loss(pred, y, t, alpha=0.5, p=2).item() == pytest.approx(0.5 * 2 + 0.5 * 2.5)
    mask = torch.tensor([1.0, 0.0])  # second label missing: label term = 1
    assert output_distillation_loss(pred, y, t, alpha=0.5, p=1, mask=mask).item() == pytest.approx(0.5 * 1 + 0.5 * 1)
    # a 0 label is missing by default (as in the metrics), counted with null_value=None
    y0 = torch.tensor([10.0, 0.0])
    assert output_distillation_loss(pred, y0, t, alpha=0.5, p=1).item() == pytest.approx(0.5 * 1 + 0.5 * 1)
    assert output_distillation_loss(pred, y0, t, alpha=0.5, p=1, null_value=None).item() == pytest.approx(0.5 * 1 + 0.5 * 6.5)


def test_teacher_bounded_loss_by_hand():
    y = torch.full((2,), 10.0)
    pred = torch.tensor([11.0, 11.0])
    teacher = torch.tensor([12.0, 10.5])  # student better on 0, worse on 1
    # base = mean(1, 1) = 1; bound active only on element 1: mean(0, 1) = 0.5
    assert teacher_bounded_loss(pred, y, teacher, nu=0.5, p=2).item() == pytest.approx(1 + 0.5 * 0.5)
    # margin 4: the student's error 1 + 4 exceeds the teacher's 4 on element 0 too: mean(1, 1) = 1
    assert teacher_bounded_loss(pred, y, teacher, margin=4.0, nu=0.5, p=2).item() == pytest.approx(1 + 0.5 * 1)


# --- logit_distillation_loss, HintDistillationLoss, labels < 0, cached soft targets ---

from kdlib import HintDistillationLoss, logit_distillation_loss  # noqa: E402


def test_logit_distillation_loss_by_hand():
    z = torch.tensor([[1.0, 2.0, 0.0]])
    v = torch.tensor([[0.0, 2.0, 2.0]])
    y = torch.tensor([1])
    mse_half = 0.5 * (1.0 + 0.0 + 4.0) / 3
    ce = -math.log(math.exp(2) / (math.exp(1) + math.exp(2) + 1))
    assert logit_distillation_loss(z, y, v, alpha=0.25).item() == pytest.approx(0.25 * mse_half + 0.75 * ce, rel=1e-6)


def test_hint_distillation_loss_by_hand():
    loss = HintDistillationLoss(2, 3, beta=2.0)
    with torch.no_grad():
        loss.hint.regressor.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        loss.hint.regressor.bias.zero_()
    logits = torch.tensor([[0.0, 0.0]])
    h = torch.tensor([[1.0, 2.0]])
    t = torch.tensor([[1.0, 0.0, 0.0]])  # mapped = [1, 2, 3]: squared errors 0, 4, 9
    expected = math.log(2) + 2.0 * 0.5 * (13 / 3)
    assert loss((logits, h), torch.tensor([1]), t).item() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="return_features"):
        loss(logits, torch.tensor([1]), t)
    with pytest.raises(ValueError, match="beta"):
        HintDistillationLoss(2, 3, beta=-1)


def _kl_by_hand(z, v, T):
    """T^2 * mean over the batch of sum_i p_i (log p_i - log q_i), in plain Python."""
    total = 0.0
    for zb, vb in zip(z.tolist(), v.tolist()):
        ez, ev = [math.exp(x / T) for x in zb], [math.exp(x / T) for x in vb]
        total += sum(e / sum(ev) * (math.log(e / sum(ev)) - math.log(f / sum(ez))) for e, f in zip(ev, ez))
    return T * T * total / len(z)


def _ce_by_hand(z, y):
    """Mean cross-entropy over the rows with y >= 0, in plain Python."""
    rows = [(zb, yb) for zb, yb in zip(z.tolist(), y.tolist()) if yb >= 0]
    return sum(math.log(sum(math.exp(x) for x in zb)) - zb[yb] for zb, yb in rows) / len(rows)


def test_distillation_loss_labels_below_zero_are_unlabelled():
    """labels < 0: soft term over every sample, cross-entropy over the labelled ones only."""
    z = torch.randn(6, 10, dtype=torch.float64)
    v = torch.randn(6, 10, dtype=torch.float64) * 3
    y = torch.tensor([3, -1, 5, -1, -7, 0])
    T, a = 3.0, 0.4
    expected = a * _kl_by_hand(z, v, T) + (1 - a) * _ce_by_hand(z, y)
    assert distillation_loss(z, y, v, T, a).item() == pytest.approx(expected, rel=1e-10)
    # No labelled sample: the hard term is 0, not NaN, and the student still gets the soft gradient.
    zz = z.clone().requires_grad_(True)
    out = distillation_loss(zz, torch.full((6,), -1), v, T, a)
    assert out.item() == pytest.approx(a * _kl_by_hand(z, v, T), rel=1e-10)
    out.backward()
    q, p = F.softmax(z / T, -1), F.softmax(v / T, -1)
    torch.testing.assert_close(zz.grad, a * T * (q - p) / 6)
    # ... and with alpha = 0 it is a 0 that still belongs to the graph.
    zero = distillation_loss(zz, torch.full((6,), -1), v, T, 0.0)
    assert zero.item() == 0.0 and zero.requires_grad


def test_partial_label_distillation_loss_is_gone():
    import kdlib

    assert not hasattr(kdlib, "partial_label_distillation_loss")


def test_logit_distillation_loss_shares_label_rule_and_default_alpha():
    import inspect

    assert inspect.signature(logit_distillation_loss).parameters["alpha"].default == 0.9
    assert inspect.signature(distillation_loss).parameters["alpha"].default == 0.9
    z = torch.randn(5, 4, dtype=torch.float64)
    v = torch.randn(5, 4, dtype=torch.float64)
    y = torch.tensor([1, -1, 0, 3, -1])
    mse_half = 0.5 * ((z - v) ** 2).mean().item()
    expected = 0.9 * mse_half + 0.1 * _ce_by_hand(z, y)
    assert logit_distillation_loss(z, y, v).item() == pytest.approx(expected, rel=1e-10)


def test_existing_distillation_path_is_bit_for_bit_unchanged():
    """The book's committed numbers: alpha * T^2 * F.kl_div(batchmean) + (1 - alpha) * CE, exactly."""
    g = torch.Generator().manual_seed(3)
    z, v, y = torch.randn(64, 10, generator=g), torch.randn(64, 10, generator=g) * 4, torch.randint(0, 10, (64,), generator=g)
    for T, a in ((4.0, 0.9), (3.0, 0.5), (1.0, 0.0)):
        kl = F.kl_div(F.log_softmax(z / T, -1), F.softmax(v / T, -1), reduction="batchmean") * T * T
        ce = F.cross_entropy(z, y)
        assert torch.equal(distillation_loss(z, y, v, T, a), a * kl + (1 - a) * ce if a else ce)


def test_distillation_loss_cached_matches_the_uncached_loss():
    from kdlib import distillation_loss_cached

    z = torch.randn(8, 10, dtype=torch.float64)
    v = torch.randn(8, 10, dtype=torch.float64) * 4
    y = torch.tensor([1, 2, -1, 4, 5, -1, 7, 8])
    T, a = 4.0, 0.9
    p = softmax_t(v, T)
    expected = a * _kl_by_hand(z, v, T) + (1 - a) * _ce_by_hand(z, y)
    zc, zu = z.clone().requires_grad_(True), z.clone().requires_grad_(True)
    cached, uncached = distillation_loss_cached(zc, y, p, T, a), distillation_loss(zu, y, v, T, a)
    assert cached.item() == pytest.approx(expected, rel=1e-10)
    cached.backward()
    uncached.backward()
    torch.testing.assert_close(zc.grad, zu.grad)
    # float32 and the defaults: equal to the uncached loss up to rounding.
    z32, v32, y32 = z.float(), v.float(), y.abs()
    torch.testing.assert_close(distillation_loss_cached(z32, y32, softmax_t(v32, 4.0)), distillation_loss(z32, y32, v32))
    torch.testing.assert_close(distillation_loss_cached(z32, y32, softmax_t(v32, 4.0), alpha=0.0), F.cross_entropy(z32, y32))


def test_logit_gradient_matches_the_derivation():
    """kd_loss: T (q - p) / B; cross-entropy: (softmax(z) - onehot(y)) / B."""
    from kdlib import logit_gradient

    z = torch.randn(6, 5, dtype=torch.float64)
    v = torch.randn(6, 5, dtype=torch.float64) * 3
    y = torch.tensor([0, 1, 2, 3, 4, 0])
    T = 3.0
    q, p = F.softmax(z / T, dim=-1), F.softmax(v / T, dim=-1)
    torch.testing.assert_close(logit_gradient(lambda s: kd_loss(s, v, T), z), T * (q - p) / 6)
    onehot = F.one_hot(y, 5).to(z.dtype)
    torch.testing.assert_close(logit_gradient(lambda s: F.cross_entropy(s, y), z), (F.softmax(z, dim=-1) - onehot) / 6)


def test_logit_gradient_leaves_logits_alone_and_handles_constant_losses():
    from kdlib import logit_gradient

    z = torch.randn(3, 4, requires_grad=True)
    g = logit_gradient(lambda s: (s**2).sum(), z)
    torch.testing.assert_close(g, 2 * z.detach())
    assert z.grad is None  # no gradient leaked into the caller's tensor
    v = torch.randn(3, 4)
    assert torch.equal(logit_gradient(lambda s: kd_loss(v, v, 2.0), z), torch.zeros(3, 4))  # no student in it
    assert torch.equal(logit_gradient(lambda s: (v * 0).sum() + 0 * s.sum(), z), torch.zeros(3, 4))


def test_logit_gradient_rejects_non_scalar_losses():
    from kdlib import logit_gradient

    with pytest.raises(ValueError, match="scalar"):
        logit_gradient(lambda s: s * 2, torch.randn(2, 3))


def test_hint_distillation_loss_takes_a_forecasting_main_loss():
    from functools import partial

    g = torch.Generator().manual_seed(0)
    pred, y, t = (torch.randn(4, 12, 5, generator=g) + 50 for _ in range(3))
    hs, ht = torch.randn(4, 5, 7, generator=g), torch.randn(4, 5, 9, generator=g)
    import kdlib

    loss = HintDistillationLoss(7, 9, beta=0.1, base_loss=partial(kdlib.output_distillation_loss, alpha=0.5, p=1))
    by_hand = (0.5 * (pred - t).abs().mean() + 0.5 * (pred - y).abs().mean()
               + 0.1 * 0.5 * ((loss.hint.regressor(hs) - ht) ** 2).mean())
    torch.testing.assert_close(loss((pred, hs), y, t, ht), by_hand)


# --- centred logit matching: the T -> infinity limit of kd_loss ---


def test_centred_logit_matching_by_hand_and_shift_invariant():
    z, v = torch.tensor([[1.0, 2.0, 6.0]]), torch.tensor([[0.0, 3.0, 0.0]])
    # centred: z - 3 = (-2, -1, 3), v - 1 = (-1, 2, -1); differences (-1, -3, 4): squares 1 + 9 + 16
    assert logit_matching_loss(z, v, centred=True).item() == pytest.approx(0.5 * 26 / 3)
    shifted = logit_matching_loss(z + torch.tensor([[5.0]]), v - 7.0, centred=True)
    assert shifted.item() == pytest.approx(0.5 * 26 / 3)
    assert logit_matching_loss(z + 5.0, v, centred=False).item() != pytest.approx(logit_matching_loss(z, v).item())


def test_centred_logit_matching_is_kd_loss_at_high_temperature():
    """T^2 KL(p^T || q^T) -> (1/2BN) sum ((z - zbar) - (v - vbar))^2, in value and gradient, for any offsets."""
    g = torch.Generator().manual_seed(7)
    z = torch.randn(5, 10, generator=g, dtype=torch.float64) + 3.0
    v = torch.randn(5, 10, generator=g, dtype=torch.float64) * 4 - 2.0
    gaps = []
    for T in (10.0, 100.0, 1000.0):
        value = abs(_kl_by_hand(z, v, T) / logit_matching_loss(z, v, centred=True).item() - 1)
        zz = z.clone().requires_grad_(True)
        (g_kd,) = torch.autograd.grad(kd_loss(zz, v, T), zz)
        zz = z.clone().requires_grad_(True)
        (g_lm,) = torch.autograd.grad(logit_matching_loss(zz, v, centred=True), zz)
        gaps.append((value, ((g_kd - g_lm).norm() / g_lm.norm()).item()))
    for k in (0, 1):  # value gap, gradient gap: shrinking with T, below 1 % at T = 1000
        assert gaps[0][k] > gaps[1][k] > gaps[2][k] and gaps[2][k] < 1e-2
    # the raw loss does not have this limit when the logits have a per-sample offset
    assert abs(_kl_by_hand(z, v, 1000.0) / logit_matching_loss(z, v).item() - 1) > 0.1


def test_logit_distillation_loss_centred_matches_distillation_loss_at_high_temperature():
    g = torch.Generator().manual_seed(8)
    z = torch.randn(6, 10, generator=g, dtype=torch.float64) - 1.0
    v = torch.randn(6, 10, generator=g, dtype=torch.float64) * 3 + 4.0
    y = torch.tensor([0, -1, 3, 9, -1, 2])
    a = 0.6
    expected = a * 0.5 * (((z - z.mean(1, keepdim=True)) - (v - v.mean(1, keepdim=True))) ** 2).mean().item() \
        + (1 - a) * _ce_by_hand(z, y)
    assert logit_distillation_loss(z, y, v, alpha=a, centred=True).item() == pytest.approx(expected, rel=1e-10)
    assert logit_distillation_loss(z, y, v, alpha=a, centred=True).item() == pytest.approx(
        distillation_loss(z, y, v, T=2000.0, alpha=a).item(), rel=1e-4)


def test_huber_distillation_loss_by_hand_and_limits():
    from kdlib import huber_distillation_loss
    pred, y, t = torch.tensor([1.0, 2.0, 4.0]), torch.tensor([2.0, 5.0, 1.0]), torch.tensor([1.5, 2.0, 1.0])
    # teacher residuals 0.5, 0, 3 with delta 1: 0.5^2 / 2 = 0.125, 0, 3 - 0.5 = 2.5; label errors 1, 3, 3
    expected = 0.25 * (0.125 + 0.0 + 2.5) / 3 + 0.75 * (1 + 3 + 3) / 3
    assert huber_distillation_loss(pred, y, t, alpha=0.25, delta=1.0).item() == pytest.approx(expected)
    # the teacher term is torch's smooth L1 (an independent implementation)
    assert huber_distillation_loss(pred, y, t, alpha=1.0, delta=0.7).item() == pytest.approx(
        F.smooth_l1_loss(pred, t, beta=0.7).item())
    # delta -> 0: the L1 output distillation loss
    assert huber_distillation_loss(pred, y, t, alpha=0.5, delta=1e-6).item() == pytest.approx(
        output_distillation_loss(pred, y, t, alpha=0.5, p=1).item(), abs=1e-5)
    # missing labels (NaN) leave the label mean, a NaN teacher forecast leaves the teacher mean
    y_nan, t_nan = torch.tensor([2.0, float("nan"), 1.0]), torch.tensor([1.5, 2.0, float("nan")])
    assert huber_distillation_loss(pred, y_nan, t_nan, alpha=0.5).item() == pytest.approx(
        0.5 * (0.125 + 0.0) / 2 + 0.5 * (1 + 3) / 2)
    with pytest.raises(ValueError, match="delta"):
        huber_distillation_loss(pred, y, t, delta=0.0)


def test_per_window_minimisers_of_the_l1_and_huber_teacher_terms():
    from kdlib import huber_distillation_loss
    y, t, grid = torch.tensor(50.0), torch.tensor(54.0), torch.linspace(48, 56, 8001)  # steps of 0.001 mph

    def argmin_set(loss):  # the grid points within 1e-6 of the smallest loss
        values = torch.stack([loss(s.reshape(1), y.reshape(1), t.reshape(1)) for s in grid])
        return grid[values <= values.min() + 1e-6]

    # L1, alpha = 0.5: flat between label and teacher (zero gradient there: the student stops anywhere)
    flat = argmin_set(lambda s, y_, t_: output_distillation_loss(s, y_, t_, alpha=0.5, p=1))
    assert flat.min().item() == pytest.approx(50.0, abs=1e-3) and flat.max().item() == pytest.approx(54.0, abs=1e-3)
    # L1 jumps from the label (alpha < 0.5) to the teacher (alpha > 0.5)
    for alpha, where in ((0.4, 50.0), (0.6, 54.0)):
        m = argmin_set(lambda s, y_, t_: output_distillation_loss(s, y_, t_, alpha=alpha, p=1))
        assert m.mean().item() == pytest.approx(where, abs=1e-3)
    # Huber, alpha = 0.75, delta = 2: t - delta (1 - alpha) / alpha = 54 - 2/3
    m = argmin_set(lambda s, y_, t_: huber_distillation_loss(s, y_, t_, alpha=0.75, delta=2.0))
    assert m.mean().item() == pytest.approx(54 - 2 / 3, abs=2e-3)
    # Huber, alpha = 0.5, delta = 1: flat between the label and t - delta
    m = argmin_set(lambda s, y_, t_: huber_distillation_loss(s, y_, t_, alpha=0.5, delta=1.0))
    assert m.min().item() == pytest.approx(50.0, abs=1e-3) and m.max().item() == pytest.approx(53.0, abs=3e-3)
