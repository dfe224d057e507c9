"""Tables of forecast errors shared by the traffic chapters: per horizon, and mean +/- std over seeds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from torch import Tensor

from .metrics import horizon_metrics

MINUTES_PER_STEP = 5


def horizon_table(
    preds: Mapping[str, Tensor],
    target: Tensor,
    horizons: Sequence[int] = (3, 6, 12),
    metrics: Sequence[str] = ("MAE", "RMSE", "MAPE"),
) -> pd.DataFrame:
    """One row per model, one column per (metric, horizon), e.g. ``"MAE 60min"``.

    ``preds`` maps a model name to its ``(W, out_steps, N)`` forecasts in mph; the
    errors are :func:`kdlib.metrics.horizon_metrics` (masked MAE, RMSE, MAPE in %).
    """
    if not preds:
        raise ValueError("preds is empty: pass {model name: forecasts}")
    rows = {}
    for name, pred in preds.items():
        m = horizon_metrics(pred, target, horizons)
        rows[name] = {f"{k} {h * MINUTES_PER_STEP}min": m[h][k] for k in metrics for h in horizons}
    return pd.DataFrame(rows).T


def mean_std_table(scores: Mapping[str, Sequence[Sequence[float]]], columns: Sequence[str]) -> pd.DataFrame:
    r"""Mean and sample standard deviation (``ddof=1``) over seeds of each method's scores.

    ``scores[method]`` is a list with one row per seed, one value per column. The result
    has columns ``"<col> mean"`` and ``"<col> std"`` and one row per method; with a single
    seed the std is NaN (one run says nothing about the spread).
    """
    rows = {}
    for name, runs in scores.items():
        a = np.asarray(runs, dtype=float)
        if a.ndim != 2 or a.shape[1] != len(columns):
            raise ValueError(f"scores[{name!r}] must be (seeds, {len(columns)}) values, got shape {a.shape}")
        std = a.std(axis=0, ddof=1) if a.shape[0] > 1 else np.full(a.shape[1], np.nan)
        row = {}
        for j, c in enumerate(columns):
            row[f"{c} mean"], row[f"{c} std"] = a[:, j].mean(), std[j]
        rows[name] = row
    return pd.DataFrame(rows).T
