"""Masked metrics against a numpy computation."""

import numpy as np
import pytest
import torch

from kdlib import accuracy, errors, horizon_metrics, masked_mae, masked_mape, masked_rmse


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    target = rng.uniform(20, 70, size=(16, 12, 5))
    target[0, 0, 0] = 0.0  # a dead sensor
    target[3, 5, 2] = np.nan
    pred = target + rng.normal(0, 3, size=target.shape)
    pred[np.isnan(pred)] = 50.0
    return torch.tensor(pred), torch.tensor(target)


def _np_reference(pred, target):
    valid = ~np.isnan(target) & (target != 0)
    e = pred[valid] - target[valid]
    return np.abs(e).mean(), np.sqrt((e**2).mean()), 100 * np.mean(np.abs(e) / np.abs(target[valid]))


def test_masked_metrics_match_numpy(data):
    pred, target = data
    mae, rmse, mape = _np_reference(pred.numpy(), target.numpy())
    assert masked_mae(pred, target) == pytest.approx(mae)
    assert masked_rmse(pred, target) == pytest.approx(rmse)
    assert masked_mape(pred, target) == pytest.approx(mape)


def test_explicit_mask_combines_with_null_masking(data):
    pred, target = data
    mask = torch.zeros_like(target, dtype=torch.bool)
    mask[:8] = True
    mae, _, _ = _np_reference(pred[:8].numpy(), target[:8].numpy())
    assert masked_mae(pred, target, mask=mask) == pytest.approx(mae)


def test_horizon_metrics_pick_the_right_step(data):
    pred, target = data
    out = horizon_metrics(pred, target, horizons=(3, 12))
    mae3, rmse3, mape3 = _np_reference(pred[:, 2].numpy(), target[:, 2].numpy())
    assert out[3]["MAE"] == pytest.approx(mae3)
    assert out[3]["RMSE"] == pytest.approx(rmse3)
    assert out[12]["MAPE"] == pytest.approx(_np_reference(pred[:, 11].numpy(), target[:, 11].numpy())[2])
    with pytest.raises(ValueError, match="horizons must lie"):
        horizon_metrics(pred, target, horizons=(13,))


def test_accuracy_and_errors():
    logits = torch.tensor([[2.0, 1.0], [0.0, 3.0], [5.0, 1.0]])
    labels = torch.tensor([0, 1, 1])
    assert accuracy(logits, labels) == pytest.approx(2 / 3)
    assert errors(logits, labels) == 1
    with pytest.raises(ValueError, match="predictions but"):
        accuracy(logits, labels[:2])


def test_shape_mismatch_raises(data):
    pred, target = data
    with pytest.raises(ValueError, match="same shape"):
        masked_mae(pred[:, :6], target)


def test_all_masked_metric_is_nan_with_a_warning(data):
    pred, target = data
    nothing = torch.zeros_like(target, dtype=torch.bool)
    for metric in (masked_mae, masked_rmse, masked_mape):
        with pytest.warns(RuntimeWarning, match="no valid entries"):
            assert np.isnan(metric(pred, target, mask=nothing))
    with pytest.warns(RuntimeWarning, match="no valid entries"):
        assert np.isnan(masked_mae(pred[:1, :1, :1], target[:1, :1, :1]))  # the dead sensor alone


def test_a_mask_must_have_the_target_shape(data):
    pred, target = data
    mask = torch.ones(target.shape[1:], dtype=torch.bool)  # (12, 5) on (16, 12, 5): no broadcasting
    with pytest.raises(ValueError, match=r"mask shape \(12, 5\) differs"):
        masked_mae(pred, target, mask=mask)
    with pytest.raises(ValueError, match=r"mask shape \(12, 5\) differs"):
        horizon_metrics(pred, target, mask=mask)
