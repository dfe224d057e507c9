"""Forecasting baselines, error tables and transfer sets against hand computations and numpy."""

import numpy as np
import pytest
import torch

import kdlib
from kdlib import HistoricalAverage, LastValue, LinearForecaster


def test_last_value_repeats_the_last_input_in_mph():
    sc = kdlib.StandardScaler().fit(torch.tensor([50.0, 70.0]))  # mean 60, std 10 (population or sample)
    x = torch.zeros(2, 12, 3)
    x[:, -1] = torch.tensor([1.0, -1.0, 0.5])
    out = LastValue(sc, out_steps=4)(x)
    assert out.shape == (2, 4, 3)
    expected = sc.inverse_transform(torch.tensor([1.0, -1.0, 0.5]))
    torch.testing.assert_close(out[1, 3], expected)


def test_historical_average_by_hand():
    # 2 "days" of 3 steps, 2 sensors: table = mean of the two days at each step of day
    speed = torch.tensor([[10.0, 1], [20, 2], [30, 3], [12, 5], [22, 6], [32, 7]])
    sod = torch.tensor([0, 1, 2, 0, 1, 2])
    ha = HistoricalAverage(steps_per_day=3, out_steps=4).fit(speed, sod)
    torch.testing.assert_close(ha.table, torch.tensor([[11.0, 3], [21, 4], [31, 5]]))
    # last input at step 2 -> forecasts for steps 0, 1, 2, 0
    out = ha(torch.zeros(1, 12, 2), torch.tensor([2]))
    torch.testing.assert_close(out[0, :, 0], torch.tensor([11.0, 21, 31, 11]))


def test_historical_average_falls_back_and_rejects_bad_input():
    ha = HistoricalAverage(steps_per_day=4).fit(torch.tensor([[2.0], [4.0]]), torch.tensor([0, 1]))
    torch.testing.assert_close(ha.table[:, 0], torch.tensor([2.0, 4.0, 3.0, 3.0]))
    with pytest.raises(RuntimeError, match="not fitted"):
        HistoricalAverage()(torch.zeros(1, 12, 1), torch.tensor([0]))
    with pytest.raises(ValueError, match="step_of_day must lie"):
        HistoricalAverage(steps_per_day=4).fit(torch.ones(2, 1), torch.tensor([0, 4]))


def test_linear_forecaster_matches_numpy_least_squares():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 12, 4, generator=g)
    y = 60 + 5 * torch.randn(50, 12, 4, generator=g)
    sc = kdlib.StandardScaler().fit(y)
    model = LinearForecaster(sc).fit(x, y, ridge=0.0)
    xs = x.transpose(1, 2).reshape(-1, 12).double().numpy()
    zs = ((y - sc.mean) / sc.std).transpose(1, 2).reshape(-1, 12).double().numpy()
    coef, *_ = np.linalg.lstsq(np.hstack([xs, np.ones((len(xs), 1))]), zs, rcond=None)
    np.testing.assert_allclose(model.linear.weight.detach().numpy(), coef[:-1].T, rtol=1e-4, atol=1e-5)
    pred = model(x, torch.zeros(50, dtype=torch.long))
    ref = (np.hstack([xs, np.ones((len(xs), 1))]) @ coef) * float(sc.std) + float(sc.mean)
    np.testing.assert_allclose(pred.transpose(1, 2).reshape(-1, 12).detach().numpy(), ref, rtol=1e-4, atol=1e-3)


def test_horizon_table():
    target = torch.full((2, 12, 3), 50.0)
    pred = target + 2.0
    t = kdlib.horizon_table({"plus2": pred}, target, horizons=(3, 12))
    assert t.loc["plus2", "MAE 15min"] == pytest.approx(2.0)
    assert t.loc["plus2", "RMSE 60min"] == pytest.approx(2.0)
    assert t.loc["plus2", "MAPE 60min"] == pytest.approx(4.0)


def test_baselines_share_the_models_interface():
    sc = kdlib.StandardScaler().fit(torch.tensor([50.0, 70.0]))
    x, tod = torch.randn(5, 12, 3), torch.tensor([0, 5, 100, 286, 287])
    ha = HistoricalAverage(out_steps=12).fit(60 + torch.randn(288, 3), torch.arange(288))
    for model in (LastValue(sc), ha, LinearForecaster(sc)):
        assert isinstance(model, torch.nn.Module)
        out = kdlib.predict(model, (x, tod), batch_size=2)  # batched like any model
        assert out.shape == (5, 12, 3)
        torch.testing.assert_close(out, model(x, tod))
        with pytest.raises(ValueError, match="shape"):
            model(torch.zeros(5, 12), tod)


def test_perturbed_copies_and_with_transfer():
    x, tod = torch.zeros(1000, 12, 5), torch.full((1000,), 287)
    xp, tp = kdlib.perturbed_copies(x, tod, copies=2, noise_std=0.5, tod_shift=3, seed=1)
    assert xp.shape == (2000, 12, 5) and tp.shape == (2000,)
    assert xp.std().item() == pytest.approx(0.5, rel=0.02)
    assert set(tp.tolist()) == {284, 285, 286, 287, 0, 1, 2}  # wraps around midnight
    xp2, _ = kdlib.perturbed_copies(x, tod, copies=2, noise_std=0.5, tod_shift=3, seed=1)
    assert torch.equal(xp, xp2)
    with pytest.raises(ValueError, match="copies"):
        kdlib.perturbed_copies(x, tod, copies=0)
    y, t = torch.ones(1000, 12, 5), torch.full((1000, 12, 5), 2.0)
    (xi, ti), (yy, tt, mask) = kdlib.with_transfer((x, tod), y, t, (xp, tp), torch.full((2000, 12, 5), 3.0))
    assert xi.shape[0] == ti.shape[0] == yy.shape[0] == 3000
    assert mask[:1000].all() and not mask[1000:].any() and torch.all(tt[1000:] == 3.0)
    # the masked label term ignores transfer windows entirely
    pred = torch.zeros(3000, 12, 5)
    loss = kdlib.output_distillation_loss(pred, yy, tt, alpha=0.0, mask=mask)
    assert loss.item() == pytest.approx(1.0)


def test_baselines_leave_nan_targets_out():
    # historical average: a NaN reading leaves the mean of its step of day (and the fallback mean)
    speed = torch.tensor([[10.0, 1], [20, 2], [30, float("nan")], [12, 5], [float("nan"), 6], [32, 7]])
    ha = HistoricalAverage(steps_per_day=3).fit(speed, torch.tensor([0, 1, 2, 0, 1, 2]))
    torch.testing.assert_close(ha.table, torch.tensor([[11.0, 3], [20, 4], [31, 7]]))
    # linear forecaster: each output step's regression is numpy's on the rows where that step has a target
    g = torch.Generator().manual_seed(1)
    x = torch.randn(40, 12, 3, generator=g)
    y = 60 + 5 * torch.randn(40, 12, 3, generator=g)
    y[torch.rand(y.shape, generator=g) < 0.2] = float("nan")
    sc = kdlib.StandardScaler().fit(torch.tensor([50.0, 70.0]))
    model = LinearForecaster(sc).fit(x, y, ridge=0.0)
    xs = np.hstack([x.transpose(1, 2).reshape(-1, 12).double().numpy(), np.ones((120, 1))])
    zs = ((y - sc.mean) / sc.std).transpose(1, 2).reshape(-1, 12).double().numpy()
    for h in range(12):
        ok = ~np.isnan(zs[:, h])
        coef, *_ = np.linalg.lstsq(xs[ok], zs[ok, h], rcond=None)
        np.testing.assert_allclose(model.linear.weight[h].detach().numpy(), coef[:-1], rtol=1e-4, atol=1e-5)
        assert model.linear.bias[h].item() == pytest.approx(coef[-1], abs=1e-5)
