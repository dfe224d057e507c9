"""fit/predict on small synthetic problems."""

from functools import partial

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import kdlib
from kdlib import accuracy, distillation_loss, fit, predict


def _blobs(n=600, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    centers = torch.tensor([[2.0, 0.0], [-2.0, 0.0], [0.0, 2.5]])
    return centers[y] + 0.7 * torch.randn(n, 2, generator=g), y


def test_fit_learns_and_records_history():
    x, y = _blobs()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3))
    before = accuracy(predict(model, x), y)
    hist = fit(model, x, y, F.cross_entropy, epochs=5, batch_size=32, lr=1e-2, device="cpu")
    assert len(hist.train_loss) == 5 and len(hist.epoch_seconds) == 5
    assert hist.train_loss[-1] < hist.train_loss[0]
    assert accuracy(predict(model, x), y) > max(0.9, before)
    assert not model.training


def test_fit_is_repeatable_with_seeds():
    x, y = _blobs()
    outs = []
    for _ in range(2):
        kdlib.seed_everything(3)
        m = nn.Linear(2, 3)
        fit(m, x, y, F.cross_entropy, epochs=2, device="cpu", seed=1)
        outs.append(m.weight.detach().clone())
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=0)


def test_restore_best_epoch():
    x, y = _blobs()
    vx, vy = _blobs(200, seed=1)
    torch.manual_seed(0)
    model = nn.Linear(2, 3)
    hist = fit(model, x, y, F.cross_entropy, epochs=6, lr=0.5, val_data=(vx, vy), val_metric=accuracy,
               higher_is_better=True, device="cpu")
    assert hist.best_score == max(hist.val_score)
    assert accuracy(predict(model, vx), vy) == pytest.approx(hist.best_score)


def test_distillation_with_cached_teacher_targets():
    x, y = _blobs()
    torch.manual_seed(0)
    teacher = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 3))
    fit(teacher, x, y, F.cross_entropy, epochs=5, lr=1e-2, device="cpu")
    cached = predict(teacher, x)
    assert cached.shape == (600, 3) and not cached.requires_grad
    student = nn.Linear(2, 3)
    fit(student, x, (y, cached), partial(distillation_loss, T=2.0, alpha=0.5), epochs=5, lr=1e-2, device="cpu")
    assert accuracy(predict(student, x), y) > 0.9


def test_teacher_runs_per_batch_on_augmented_inputs():
    x, y = _blobs(64)
    calls = []

    class Teacher(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 3)

        def forward(self, inp):
            calls.append(inp.clone())
            return self.lin(inp)

    seen = []

    def loss(out, labels, teacher_out):
        seen.append(teacher_out.shape)
        assert not teacher_out.requires_grad
        return F.cross_entropy(out, labels)

    fit(nn.Linear(2, 3), x, y, loss, epochs=1, batch_size=16, teacher=Teacher(),
        augment=lambda b: (b[0] + 100.0,), device="cpu")
    assert len(calls) == 4 and seen == [torch.Size([16, 3])] * 4
    assert all(c.mean() > 50 for c in calls)  # the teacher saw the augmented batch


def test_feature_distillation_trains_extra_modules():
    x, y = _blobs(128)
    student = kdlib.MLP((8,), in_features=2, num_classes=3)
    hint = kdlib.HintLoss(8, 4)
    target_feats = torch.randn(128, 4)
    w0 = hint.regressor.weight.detach().clone()
    fit(student, x, (y, target_feats), lambda out, lab, tf: F.cross_entropy(out[0], lab) + hint(out[1], tf),
        epochs=1, forward_kwargs={"return_features": True}, extra_modules=[hint], device="cpu")
    assert not torch.equal(w0, hint.regressor.weight)


def test_fit_rejects_bad_input():
    x, y = _blobs(10)
    with pytest.raises(ValueError, match="same first"):
        fit(nn.Linear(2, 3), x, y[:5], F.cross_entropy)
    with pytest.raises(ValueError, match="val_metric"):
        fit(nn.Linear(2, 3), x, y, F.cross_entropy, val_data=(x, y))


def test_scheduler_is_stepped_once_per_epoch():
    x, y = _blobs(64)
    m = nn.Linear(2, 3)
    lrs = []

    def sched(opt):
        s = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
        lrs.append(opt)
        return s

    fit(m, x, y, F.cross_entropy, epochs=3, lr=0.8, scheduler=sched, device="cpu")
    assert lrs[0].param_groups[0]["lr"] == pytest.approx(0.1)


def test_predict_works_for_a_model_without_parameters():
    class Double(nn.Module):
        def forward(self, x):
            return 2 * x

    x = torch.arange(6.0).view(3, 2)
    torch.testing.assert_close(predict(Double(), x, batch_size=2), 2 * x)
