"""fit/predict on bad input: NaN scores and losses, metric direction, empty data, defaults."""

import inspect
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import kdlib
from kdlib import accuracy, errors, train  # train.fit / train.predict, so one module can be swapped in


def _blobs(n=120, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    centers = torch.tensor([[2.0, 0.0], [-2.0, 0.0], [0.0, 2.5]])
    return centers[y] + 0.7 * torch.randn(n, 2, generator=g), y


def _scripted_metric(scores, higher_is_better=True):
    """A metric returning ``scores`` in turn and keeping each epoch's predictions."""
    seen = []

    def metric(pred, target):
        seen.append(pred.clone())
        return scores[len(seen) - 1]

    metric.higher_is_better = higher_is_better
    return metric, seen


def test_nan_validation_score_is_never_best():
    x, y = _blobs()
    torch.manual_seed(0)
    model = nn.Linear(2, 3)
    metric, seen = _scripted_metric([math.nan, 0.5, 0.9, 0.7])
    with pytest.warns(UserWarning, match="epoch 0: the validation score is NaN"):
        hist = train.fit(model, x, y, F.cross_entropy, epochs=4, val_data=(x, y), val_metric=metric, device="cpu")
    assert hist.best_epoch == 2 and hist.best_score == 0.9
    torch.testing.assert_close(train.predict(model, x), seen[2])  # epoch 2's weights restored


def test_all_nan_validation_scores_restore_nothing():
    x, y = _blobs()
    torch.manual_seed(0)
    model = nn.Linear(2, 3)
    metric, seen = _scripted_metric([math.nan] * 3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hist = train.fit(model, x, y, F.cross_entropy, epochs=3, val_data=(x, y), val_metric=metric, device="cpu")
    messages = [str(w.message) for w in caught]
    assert [m for m in messages if m.startswith("epoch ")] == [
        f"epoch {e}: the validation score is NaN, so never the best" for e in range(3)]
    assert any("every validation score is NaN" in m for m in messages)
    assert hist.best_epoch is None and hist.best_score is None
    torch.testing.assert_close(train.predict(model, x), seen[-1])  # the last epoch's weights are kept


@pytest.mark.parametrize("metric, best", [(accuracy, max), (errors, min)])
def test_direction_comes_from_the_metric(metric, best):
    x, y = _blobs(300)
    vx, vy = _blobs(100, seed=1)
    torch.manual_seed(0)
    model = nn.Linear(2, 3)
    hist = train.fit(model, x, y, F.cross_entropy, epochs=6, lr=0.5, val_data=(vx, vy), val_metric=metric,
                     device="cpu")
    assert len(set(hist.val_score)) > 1  # otherwise the direction would not matter
    assert hist.best_score == best(hist.val_score)
    assert float(metric(train.predict(model, vx), vy)) == pytest.approx(hist.best_score)


def test_metric_direction_must_be_known_and_consistent():
    x, y = _blobs(20)
    kw = dict(val_data=(x, y), epochs=1, device="cpu")
    with pytest.raises(ValueError, match="contradicts"):
        train.fit(nn.Linear(2, 3), x, y, F.cross_entropy, val_metric=accuracy, higher_is_better=False, **kw)

    def custom(pred, target):  # no higher_is_better attribute
        return float((pred.argmax(1) == target).float().mean())

    with pytest.raises(ValueError, match="higher_is_better=True or False"):
        train.fit(nn.Linear(2, 3), x, y, F.cross_entropy, val_metric=custom, **kw)
    hist = train.fit(nn.Linear(2, 3), x, y, F.cross_entropy, val_metric=custom, higher_is_better=True, **kw)
    assert hist.best_epoch == 0


@pytest.mark.parametrize("case, match", [
    ("no samples", "training data has 0 samples"),
    ("no inputs", "training inputs are empty"),
    ("no validation samples", "validation data has 0 samples"),
    ("val_data ()", "pair"),
    ("no validation inputs", "validation inputs are empty"),
])
def test_empty_data_raises_a_clear_value_error(case, match):
    x, y = _blobs(20)
    args, kw = {
        "no samples": ((x[:0], y[:0]), {}),
        "no inputs": (((), y), {}),
        "no validation samples": ((x, y), {"val_data": (x[:0], y[:0]), "val_metric": accuracy}),
        "val_data ()": ((x, y), {"val_data": (), "val_metric": accuracy}),
        "no validation inputs": ((x, y), {"val_data": ((), y), "val_metric": accuracy}),
    }[case]
    model = nn.Linear(2, 3)
    w0 = model.weight.detach().clone()
    with pytest.raises(ValueError, match=match):
        train.fit(model, *args, F.cross_entropy, device="cpu", **kw)
    assert torch.equal(model.weight, w0)  # rejected before any training


def test_predict_on_zero_samples_gives_empty_outputs_of_the_right_shape():
    assert train.predict(nn.Linear(2, 3), torch.zeros(0, 2)).shape == (0, 3)
    out, feats = train.predict(kdlib.MLP((8,), in_features=2, num_classes=3), torch.zeros(0, 2), return_features=True)
    assert out.shape == (0, 3) and feats.shape == (0, 8)

    class NeedsSamples(nn.Module):
        def forward(self, x):
            return x / x.shape[0] if x.shape[0] else x.max(dim=0).values  # max over an empty dim fails

    with pytest.raises(ValueError, match="0 samples"):
        train.predict(NeedsSamples(), torch.zeros(0, 2))
    with pytest.raises(ValueError, match="non-empty tuple"):
        train.predict(nn.Linear(2, 3), ())


@pytest.mark.parametrize("where", ["inputs", "targets"])
def test_non_finite_loss_stops_training_naming_epoch_and_batch(where):
    x, y = torch.randn(40, 2), torch.randn(40, 1)
    bad = 17
    if where == "inputs":
        x[bad, 0] = float("nan")
    else:
        y[bad, 0] = float("inf")
    position = int((torch.randperm(40, generator=torch.Generator().manual_seed(0)) == bad).nonzero())
    with pytest.raises(FloatingPointError, match=rf"epoch 0, batch {position // 8}: .*NaN/inf.*learning rate"):
        train.fit(nn.Linear(2, 1), x, y, F.mse_loss, batch_size=8, device="cpu")


def test_non_finite_loss_in_a_later_epoch():
    x, y = _blobs(40)
    calls = []

    def loss(out, target):
        calls.append(1)
        value = F.cross_entropy(out, target)
        return value * math.inf if len(calls) == 7 else value  # epoch 1 (5 batches each), batch 1

    with pytest.raises(FloatingPointError, match="epoch 1, batch 1"):
        train.fit(nn.Linear(2, 3), x, y, loss, batch_size=8, device="cpu")


def test_fit_signature_defaults():
    params = inspect.signature(train.fit).parameters
    assert params["progress"].default is False
    assert params["higher_is_better"].default is None
    assert "weight_decay" not in params and "grad_clip" not in params  # fold into optimizer=...
    doc = train.fit.__doc__
    assert all(name in doc for name in params)  # every argument described


def test_batches_follow_the_seeded_permutation():
    n, bs, seed = 23, 5, 4
    x = torch.arange(float(n)).unsqueeze(1)
    seen = []

    def loss(out, target):
        seen.append(target.clone())
        return out.sum() * 0

    train.fit(nn.Linear(1, 1), x, torch.arange(n), loss, epochs=2, batch_size=bs, seed=seed, device="cpu")
    gen = torch.Generator().manual_seed(seed)
    expected = [p[i : i + bs] for p in (torch.randperm(n, generator=gen) for _ in range(2)) for i in range(0, n, bs)]
    assert len(seen) == len(expected) and all(torch.equal(a, b) for a, b in zip(seen, expected))


def test_seed_everything_checks_the_seed_type():
    for bad in ("3", 3.0, None, True):
        with pytest.raises(TypeError, match="seed must be an int"):
            train.seed_everything(bad)
    train.seed_everything(np.int64(3))
    a = torch.rand(2)
    train.seed_everything(3)
    assert torch.equal(a, torch.rand(2))
