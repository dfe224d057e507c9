"""Metrics as plain functions, in the style of tsl: an optional ``mask`` plus one masking rule, :func:`valid_mask`.

A target that is NaN, equals ``null_value`` (default 0: a dead loop detector reports 0 mph) or lies outside ``mask``
is left out; the training losses use the same rule and default, so a loss and its metric count the same entries.
A metric with no valid entry is NaN, with a ``RuntimeWarning``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import pandas as pd
import torch
from torch import Tensor

__all__: list[str] = ["accuracy", "errors", "valid_mask", "masked_mae", "masked_rmse", "masked_mape", "horizon_metrics",
                      "horizon_table", "MINUTES_PER_STEP"]


def accuracy(logits: Tensor, labels: Tensor) -> float:
    """Fraction of samples whose arg-max logit equals the label."""
    if logits.shape[0] != labels.shape[0]:
        raise ValueError(f"{logits.shape[0]} predictions but {labels.shape[0]} labels")
    return (logits.argmax(dim=-1) == labels).float().mean().item()


def errors(logits: Tensor, labels: Tensor) -> int:
    """Number of misclassified samples (Hinton et al. report MNIST test errors out of 10,000)."""
    if logits.shape[0] != labels.shape[0]:
        raise ValueError(f"{logits.shape[0]} predictions but {labels.shape[0]} labels")
    return int((logits.argmax(dim=-1) != labels).sum().item())


def valid_mask(target: Tensor, mask: Tensor | None = None, null_value: float | None = 0.0) -> Tensor:
    """Boolean mask of the entries that count: not NaN, not ``null_value``, and in ``mask`` (of the target's shape)."""
    m = ~torch.isnan(target)
    if null_value is not None:
        m &= target != null_value
    if mask is not None:
        if mask.shape != target.shape:
            raise ValueError(f"mask shape {tuple(mask.shape)} differs from target shape {tuple(target.shape)}")
        m &= mask.bool()
    return m


def _all_valid(target: Tensor, null_value: float | None = 0.0) -> bool:
    """``valid_mask(target, None, null_value).all()`` in two cheap reductions (the training losses' fast path)."""
    if torch.isnan(target.sum()):  # some NaN (or +inf with -inf: then the masked path, equally right)
        return False
    return null_value is None or int(torch.count_nonzero(target - null_value)) == target.numel()


def _masked_mean(err: Tensor, m: Tensor) -> float:
    if not m.any():
        warnings.warn("no valid entries (all NaN, null_value or masked out): the metric is NaN", RuntimeWarning,
                      stacklevel=3)
        return float("nan")
    return (err[m]).double().mean().item()


def _check(pred: Tensor, target: Tensor) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must have the same shape")


def masked_mae(pred: Tensor, target: Tensor, mask: Tensor | None = None, null_value: float | None = 0.0) -> float:
    r"""Mean absolute error over valid entries: :math:`\frac{1}{|V|}\sum_{V} |\hat y - y|`."""
    _check(pred, target)
    return _masked_mean((pred - target).abs(), valid_mask(target, mask, null_value))


def masked_rmse(pred: Tensor, target: Tensor, mask: Tensor | None = None, null_value: float | None = 0.0) -> float:
    r"""Root mean squared error over valid entries: :math:`\sqrt{\frac{1}{|V|}\sum_{V} (\hat y - y)^2}`."""
    _check(pred, target)
    return _masked_mean((pred - target) ** 2, valid_mask(target, mask, null_value)) ** 0.5


def masked_mape(pred: Tensor, target: Tensor, mask: Tensor | None = None, null_value: float | None = 0.0) -> float:
    r"""Mean absolute percentage error in %: :math:`\frac{100}{|V|}\sum_{V} |\hat y - y| / |y|`."""
    _check(pred, target)
    m = valid_mask(target, mask, null_value) & (target != 0)
    return 100.0 * _masked_mean((pred - target).abs() / target.abs(), m)


def horizon_metrics(
    pred: Tensor, target: Tensor, horizons: Sequence[int] = (3, 6, 12), mask: Tensor | None = None
) -> dict[int, dict[str, float]]:
    """``{horizon: {"MAE": .., "RMSE": .., "MAPE": ..}}``; a horizon is a 1-based step (3, 6, 12 = 15, 30, 60 min)."""
    _check(pred, target)
    if max(horizons) > pred.shape[1] or min(horizons) < 1:
        raise ValueError(f"horizons must lie in 1..{pred.shape[1]}, got {tuple(horizons)}")
    if mask is not None and mask.shape != target.shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} differs from target shape {tuple(target.shape)}")
    out = {}
    for h in horizons:
        p, t = pred[:, h - 1], target[:, h - 1]
        m = None if mask is None else mask[:, h - 1]
        out[h] = {"MAE": masked_mae(p, t, m), "RMSE": masked_rmse(p, t, m), "MAPE": masked_mape(p, t, m)}
    return out


# The direction of each metric travels with it, so fit(val_metric=...) cannot restore the worst epoch.
accuracy.higher_is_better = True
errors.higher_is_better = False
masked_mae.higher_is_better = False
masked_rmse.higher_is_better = False
masked_mape.higher_is_better = False

MINUTES_PER_STEP = 5


def horizon_table(
    preds: Mapping[str, Tensor],
    target: Tensor,
    horizons: Sequence[int] = (3, 6, 12),
    metrics: Sequence[str] = ("MAE", "RMSE", "MAPE"),
) -> pd.DataFrame:
    """:func:`horizon_metrics` of each ``{model name: (W, out_steps, N) forecasts in mph}``: one row per model,
    one column per (metric, horizon), e.g. ``"MAE 60min"``."""
    if not preds:
        raise ValueError("preds is empty: pass {model name: forecasts}")
    rows = {}
    for name, pred in preds.items():
        m = horizon_metrics(pred, target, horizons)
        rows[name] = {f"{k} {h * MINUTES_PER_STEP}min": m[h][k] for k in metrics for h in horizons}
    return pd.DataFrame(rows).T
