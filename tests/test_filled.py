"""Filled (interpolated or stuck) stretches of the METR-LA week: detection and masking, checked by hand."""

import numpy as np
import pandas as pd
import pytest
import torch

import kdlib
from kdlib.data import MetrLAWeek, observed_mask, straight_runs
from kdlib.preprocessing import traffic_splits


def _series(steps: int = 60) -> np.ndarray:
    """Two sensors of irregular 'measured' values with a known ramp (sensor 0) and a known constant run (sensor 1)."""
    rng = np.random.default_rng(0)
    x = 50 + rng.normal(0, 3, (steps, 2))  # no three of these are collinear (checked below by brute force)
    x[20:31, 0] = np.linspace(x[20, 0], x[30, 0], 11)  # a gap 21..29 filled by a straight line: points 20..30
    x[40:46, 1] = 61.25  # stuck: points 40..45
    return x


def _brute_runs(x: np.ndarray, min_points: int, atol: float) -> set[tuple[int, int, int]]:
    """Independent check: every maximal stretch whose consecutive differences are equal (to atol)."""
    found = set()
    for j in range(x.shape[1]):
        t = 0
        while t < len(x) - 1:
            e = t + 1
            while e + 1 < len(x) and abs((x[e + 1, j] - x[e, j]) - (x[e, j] - x[e - 1, j])) <= atol:
                e += 1
            if e - t + 1 >= min_points:
                found.add((j, t, e))
            t = e if e > t + 1 else t + 1
    return found


def test_straight_runs_finds_the_known_ramp_and_constant_run():
    x = _series()
    runs = {tuple(r) for r in straight_runs(torch.tensor(x, dtype=torch.float32), min_points=4, network_share=None).tolist()}
    assert (0, 20, 30) in runs and (1, 40, 45) in runs
    assert runs == _brute_runs(x.astype(np.float32).astype(np.float64), 4, kdlib.data.FILLED_ATOL)
    # float32 rounding stays inside the tolerance; a 0.01 mph kink does not
    bent = x.copy()
    bent[25, 0] += 0.01
    assert not any(r[0] == 0 and r[1] <= 25 <= r[2] and r[2] - r[1] > 8 for r in straight_runs(bent, 4, network_share=None).tolist())
    with pytest.raises(ValueError, match="min_points"):
        straight_runs(x, min_points=2)


def test_network_wide_short_runs_count():
    rng = np.random.default_rng(1)
    x = 50 + np.round(rng.normal(0, 3, (30, 4)) * 8) / 8
    x[11] = (x[10] + x[12]) / 2  # one step every sensor missed, filled: 3 collinear points 10..12 in each column
    assert {tuple(r) for r in straight_runs(x, 4, network_share=0.5).tolist()} >= {(j, 10, 12) for j in range(4)}
    assert not any(r[1] == 10 and r[2] == 12 for r in straight_runs(x, 4, network_share=None).tolist())


def test_observed_mask_hides_only_interior_points():
    obs = observed_mask((60, 2), np.array([[0, 20, 30], [1, 40, 45]]))
    assert obs.dtype == torch.bool and obs.shape == (60, 2)
    assert (~obs[:, 0]).nonzero().flatten().tolist() == list(range(21, 30))
    assert (~obs[:, 1]).nonzero().flatten().tolist() == list(range(41, 45))


def _week(x: np.ndarray) -> MetrLAWeek:
    steps, n = x.shape
    return MetrLAWeek(speed=torch.tensor(x, dtype=torch.float32),
                      timestamps=pd.date_range("2012-03-01", periods=steps, freq="5min"),
                      sensor_ids=[str(i) for i in range(n)], locations=np.zeros((n, 2)), adj=torch.eye(n))


def test_traffic_splits_masks_filled_labels_and_the_leaked_end_point():
    x = _series(200)
    week = _week(x)
    assert {tuple(r) for r in week.filled_runs.tolist()} == {(0, 20, 30), (1, 40, 45)}
    splits, _ = traffic_splits(week, in_steps=4, out_steps=3, fractions=(0.7, 0.1, 0.2))  # train: steps 0..139
    tr = splits["train"]
    assert torch.isfinite(tr.x).all() and torch.isfinite(tr.y_unmasked).all()
    # brute force, per window and target: missing iff interior of a run, or the run's end with >= 2 run points in the input
    expected = torch.zeros_like(tr.y, dtype=torch.bool)
    for w in range(len(tr)):
        for h in range(3):
            t = w + 4 + h
            for j, first, last in [(0, 20, 30), (1, 40, 45)]:
                in_run = sum(first <= s <= last for s in range(w, w + 4))
                if first < t < last or (t == last and in_run >= 2):
                    expected[w, h, j] = True
    assert torch.equal(torch.isnan(tr.y), expected)
    assert torch.equal(tr.y[~expected], tr.y_unmasked[~expected])
    # e.g. window 25 reads 25..28 (on the ramp) and predicts 29, 30, 31: 29 filled, 30 given away, 31 fair
    assert torch.isnan(tr.y[25, :2, 0]).all() and torch.isfinite(tr.y[25, 2, 0])
    # window 16 reads 16..19 (no ramp point) and predicts 20..22: the ramp's start is a fair target
    assert torch.isfinite(tr.y[16, 0, 0]) and torch.isnan(tr.y[16, 1:, 0]).all()


def test_losses_and_metrics_skip_the_masked_labels():
    week = _week(_series(200))
    splits, _ = traffic_splits(week, in_steps=4, out_steps=3)
    tr = splits["train"]
    pred = torch.zeros_like(tr.y, requires_grad=True)
    valid = ~torch.isnan(tr.y)
    assert kdlib.masked_mae(pred.detach(), tr.y) == pytest.approx(tr.y[valid].double().mean().item())
    loss = kdlib.l1_loss(pred, tr.y)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(pred.grad).all() and (pred.grad[~valid] == 0).all()


def test_fit_and_fit_stacked_train_on_nan_labels():
    # NaN labels (filled stretches) pass fit's and fit_stacked's checks; the loss and the validation score skip them
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 12, 3, generator=g)
    tod = torch.randint(0, kdlib.STEPS_PER_DAY, (64,), generator=g)
    y = 50 + 5 * x.flip(1)
    y[::3, 2:5, 1] = float("nan")
    sc = kdlib.StandardScaler().fit(torch.tensor([40.0, 60.0]))
    make = lambda: kdlib.STIDStudent(3, sc, hidden=8, layers=1, node_dim=2, tod_dim=2)
    torch.manual_seed(0)
    hist = kdlib.fit(make(), (x, tod), y, kdlib.l1_loss, epochs=2, batch_size=16, val_data=((x, tod), y),
                     val_metric=kdlib.masked_mae, progress=False)
    assert all(np.isfinite(hist.train_loss)) and np.isfinite(hist.best_score)
    torch.manual_seed(0)
    hists = kdlib.fit_stacked([make(), make()], (x, tod), y, kdlib.l1_loss, seeds=(0, 1), epochs=2, batch_size=16,
                              val_data=((x, tod), y), val_metric=kdlib.masked_mae)
    assert all(np.isfinite(h.train_loss).all() and np.isfinite(h.best_score) for h in hists)
