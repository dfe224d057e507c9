"""fit_stacked: K seeds trained at once equal K separate fit runs (to float rounding)."""

import copy
from functools import partial

import pytest
import torch
import torch.nn.functional as F

import kdlib
from kdlib import Method, fit, fit_stacked, seeded_students, train_students

# Batched and single matmuls round differently (~1e-9 on a gradient). Adam divides each gradient by
# its own running magnitude, so an element whose gradient happens to be ~0 (|g| ~ eps) turns that
# rounding into a step difference of up to a fraction of lr: allow 1e-4 on single elements
# (a wrong batch order or copies leaking into each other differ by ~1e-2), 1e-6 on average.
ATOL, MEAN_ATOL = 1e-4, 1e-6


def _digits(n=192, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, (n,), generator=g)
    x = torch.randn(n, 1, 28, 28, generator=g) * 0.5 + y[:, None, None, None] * 0.1
    return x, y


def _traffic(n=96, nodes=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 12, nodes, generator=g)
    tod = torch.randint(0, kdlib.STEPS_PER_DAY, (n,), generator=g)
    y = 50 + 10 * x.flip(1) + torch.randn(n, 12, nodes, generator=g)
    y[0, 3, 1] = y[5, :, 2] = 0.0  # missing readings: l1_loss and masked_mae skip them
    return x, tod, y


def _mlp():
    return kdlib.MLP((30, 30))


def _stid():
    return kdlib.STIDStudent(5, None, **kdlib.STUDENT_SIZES["tiny"])


def _compare(make, seeds, inputs, targets, loss, **kw):
    """fit_stacked on seeded_students vs one fit per seed from the same weights; everything must agree."""
    stacked = seeded_students(make, seeds)
    alone = [copy.deepcopy(m) for m in stacked]
    histories = fit_stacked(stacked, inputs, targets, loss, seeds=seeds, device="cpu", **kw)
    assert len(histories) == len(seeds)
    for seed, a, b, hs in zip(seeds, stacked, alone, histories):
        h = fit(b, inputs, targets, loss, seed=seed, device="cpu", **kw)
        assert not a.training
        for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
            torch.testing.assert_close(p, q, rtol=0, atol=ATOL, msg=f"seed {seed}, {name}")
            assert (p - q).abs().float().mean() < MEAN_ATOL, f"seed {seed}, {name}"
        assert hs.train_loss == pytest.approx(h.train_loss, rel=1e-5)
        assert hs.val_score == pytest.approx(h.val_score, rel=1e-5)
        assert hs.best_epoch == h.best_epoch and len(hs.epoch_seconds) == len(h.epoch_seconds)
    return histories


def test_one_copy_matches_fit():
    x, y = _digits()
    _compare(_mlp, [7], x, y, F.cross_entropy, epochs=3, batch_size=32, lr=3e-3)


def test_mlp_copies_match_fit_with_and_without_validation():
    x, y = _digits()
    xv, yv = _digits(100, seed=1)
    _compare(_mlp, [0, 1, 2], x.flatten(1), y, F.cross_entropy, epochs=3, batch_size=40)  # flattened, last batch short
    hs = _compare(_mlp, [0, 1, 2], x, y, F.cross_entropy, val_data=(xv, yv), val_metric=kdlib.accuracy,
                  **kdlib.cosine_adam(4, batch_size=32))
    assert all(h.best_epoch is not None for h in hs)


def test_mlp_distillation_with_unlabelled_samples():
    x, y = _digits()
    teacher_logits = torch.randn(len(y), 10) * 3
    labels = y.clone()
    labels[::3] = -1
    _compare(_mlp, [0, 3], x, (labels, teacher_logits), partial(kdlib.distillation_loss, T=4.0, alpha=0.9), epochs=2,
             batch_size=32)


def test_stid_copies_match_fit_with_best_epoch_restore():
    x, tod, y = _traffic()
    xv, todv, yv = _traffic(40, seed=1)
    _compare(_stid, [0, 1, 2], (x, tod), y, kdlib.l1_loss, epochs=4, batch_size=16, lr=1e-2,
             val_data=((xv, todv), yv), val_metric=kdlib.masked_mae)
    _compare(_stid, [4, 5], (x, tod), y, kdlib.l1_loss, epochs=2, batch_size=16, lr=1e-2)


def test_stid_output_distillation():
    x, tod, y = _traffic()
    teacher_y = y + torch.randn_like(y)
    _compare(_stid, [0, 1], (x, tod), (y, teacher_y), partial(kdlib.output_distillation_loss, alpha=0.5), epochs=2,
             batch_size=16, lr=1e-2)


def test_bad_input():
    x, y = _digits(32)
    with pytest.raises(ValueError, match="one seed per model"):
        fit_stacked(seeded_students(_mlp, [0, 1]), x, y, F.cross_entropy, seeds=[0])
    with pytest.raises(ValueError, match="higher_is_better"):
        fit_stacked(seeded_students(_mlp, [0]), x, y, F.cross_entropy, seeds=[0], val_data=(x, y),
                    val_metric=lambda out, y: 0.0)
    with pytest.raises(FloatingPointError, match="loss nan for seed 0"):
        bad = x.clone()
        bad[0] = float("nan")
        fit_stacked(seeded_students(_mlp, [0, 1]), bad, y, F.cross_entropy, seeds=[0, 1], device="cpu")


def test_train_students_stacked_equals_per_seed():
    x, y = _digits()
    xt, yt = _digits(150, seed=2)
    teacher_logits = torch.randn(len(y), 10) * 3
    methods = {
        "scratch": Method(F.cross_entropy, y),
        "kd": Method(partial(kdlib.distillation_loss, T=4.0, alpha=0.9), (y, teacher_logits), params={"T": 4.0}),
        "slow": Method(F.cross_entropy, y, fit_kwargs={"lr": 1e-4}),  # own fit_kwargs: trained per seed
    }
    kw = dict(seeds=(0, 1), epochs=2, batch_size=32, device="cpu", val_data=(xt, yt), val_metric=kdlib.accuracy)
    score = kdlib.classification_score(xt, yt)
    per_seed = train_students(_mlp, methods, x, score, **kw)
    stacked = train_students(_mlp, methods, x, score, stacked=True, **kw)
    a, b = per_seed.table, stacked.table
    assert list(a.columns) == list(b.columns) and len(a) == 6
    cols = [c for c in a.columns if c not in ("seconds", "accuracy")]
    assert a[cols].equals(b[cols])
    assert list(per_seed.histories) == list(stacked.histories) and list(per_seed.models) == list(stacked.models)
    for key, model in stacked.models.items():
        for p, q in zip(model.parameters(), per_seed.models[key].parameters()):
            torch.testing.assert_close(p, q, rtol=0, atol=ATOL)
        assert stacked.histories[key].val_score == pytest.approx(per_seed.histories[key].val_score, rel=1e-5)
