r"""Forecasting baselines: last value, historical average, linear.

Each is an ``nn.Module`` with the traffic models' ``forward(x, tod)`` (see :mod:`kdlib.models`); ``fit(...)``
(training split only) returns the module, so the rest of kdlib takes them like any model.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .data import STEPS_PER_DAY
from .models import _OutputScale
from .preprocessing import StandardScaler

__all__: list[str] = ["LastValue", "HistoricalAverage", "LinearForecaster"]


def _check_windows(x: Tensor, in_steps: int | None = None) -> None:
    if x.dim() != 3 or (in_steps is not None and x.shape[1] != in_steps):
        raise ValueError(f"x must have shape (windows, {in_steps or 'in_steps'}, sensors), got {tuple(x.shape)}")


class LastValue(nn.Module):
    r"""Persistence, :math:`\hat y_{t+h} = y_t`; ``scaler`` (the inputs') turns the last input back into mph."""

    def __init__(self, scaler: StandardScaler, out_steps: int = 12) -> None:
        super().__init__()
        self.scaler, self.out_steps = scaler, out_steps

    def forward(self, x: Tensor, tod: Tensor | None = None) -> Tensor:
        _check_windows(x)
        return self.scaler.inverse_transform(x[:, -1:, :]).expand(-1, self.out_steps, -1).clone()


class HistoricalAverage(nn.Module):
    r"""Mean speed per sensor and step of day, from the training split only; the current traffic is ignored.

    .. math::
        \mathrm{HA}[s, n] = \frac{1}{|\{t : \mathrm{sod}(t) = s\}|} \sum_{t:\, \mathrm{sod}(t) = s} v_{t, n},
        \qquad \hat y_{h, n} = \mathrm{HA}[(\tau + h) \bmod 288,\, n]

    where :math:`\tau` is the step of day of a window's last input step. A step of day absent from training falls
    back to the sensor's overall mean; NaN speeds (missing) are left out of both means.
    """

    def __init__(self, steps_per_day: int = STEPS_PER_DAY, out_steps: int = 12) -> None:
        super().__init__()
        self.steps_per_day, self.out_steps = steps_per_day, out_steps
        self.table: Tensor | None = None  # (steps_per_day, N) after fit

    def fit(self, speed: Tensor, step_of_day: Tensor) -> "HistoricalAverage":
        """``speed``: ``(T, N)`` mph of the training split; ``step_of_day``: ``(T,)`` int in 0..steps_per_day-1."""
        if speed.dim() != 2 or step_of_day.shape != speed.shape[:1]:
            raise ValueError(
                f"speed must be (T, N) and step_of_day (T,), got {tuple(speed.shape)} and {tuple(step_of_day.shape)}"
            )
        sod = step_of_day.long()
        if sod.min() < 0 or sod.max() >= self.steps_per_day:
            raise ValueError(f"step_of_day must lie in 0..{self.steps_per_day - 1}")
        n = speed.shape[1]
        ok = ~torch.isnan(speed)
        v = torch.where(ok, speed, torch.zeros_like(speed)).double()
        sums = torch.zeros(self.steps_per_day, n, dtype=torch.float64).index_add_(0, sod, v)
        counts = torch.zeros(self.steps_per_day, n, dtype=torch.float64).index_add_(0, sod, ok.double())
        overall = (v.sum(0, keepdim=True) / ok.sum(0, keepdim=True).clamp_min(1)).expand(self.steps_per_day, -1)
        self.table = torch.where(counts > 0, sums / counts.clamp_min(1), overall).float()
        return self

    def forward(self, x: Tensor, tod: Tensor) -> Tensor:
        if self.table is None:
            raise RuntimeError("HistoricalAverage is not fitted: call .fit(train_speed, train_step_of_day) first")
        _check_windows(x)
        steps = (tod.long()[:, None] + torch.arange(1, self.out_steps + 1)) % self.steps_per_day
        return self.table[steps]


class LinearForecaster(nn.Module):
    r"""One linear map :math:`\hat z = W^\top x + b`, shared by all sensors, from a sensor's ``in_steps`` scaled speeds
    to its ``out_steps`` future ones; ridge regression on scaled values, one row per (window, sensor):

    .. math::
        [W; b] = (\tilde X^\top \tilde X + \lambda I)^{-1} \tilde X^\top Z, \qquad \tilde X = [X, \mathbf 1]

    ``forward(x, tod)`` ignores ``tod``; its features (``return_features=True``) are the inputs.
    """

    def __init__(self, scaler: StandardScaler | None = None, in_steps: int = 12, out_steps: int = 12) -> None:
        super().__init__()
        self.in_steps, self.out_steps = in_steps, out_steps
        self.linear = nn.Linear(in_steps, out_steps)
        self.scale = _OutputScale(scaler)

    @torch.no_grad()
    def fit(self, x: Tensor, y: Tensor, ridge: float = 1e-3) -> "LinearForecaster":
        """Fit on scaled ``x`` ``(W, in_steps, N)`` and mph ``y`` ``(W, out_steps, N)``; a NaN target leaves its row out
        of that output step's regression only."""
        if ridge < 0:
            raise ValueError(f"ridge must be >= 0, got {ridge}")
        if x.shape[0] != y.shape[0] or x.shape[1] != self.in_steps or y.shape[1] != self.out_steps:
            raise ValueError(f"x must be (W, {self.in_steps}, N) and y (W, {self.out_steps}, N); "
                             f"got {tuple(x.shape)} and {tuple(y.shape)}")
        xs = x.transpose(1, 2).reshape(-1, self.in_steps).double()
        zs = ((y - self.scale.mean) / self.scale.std).transpose(1, 2).reshape(-1, self.out_steps).double()
        xt = torch.cat([xs, torch.ones(xs.shape[0], 1, dtype=xs.dtype)], dim=1)
        eye = ridge * torch.eye(xt.shape[1], dtype=xs.dtype)
        if not torch.isnan(zs).any():
            coef = torch.linalg.solve(xt.T @ xt + eye, xt.T @ zs)  # (in_steps + 1, out_steps)
        else:  # one system per output step, on the rows whose target it has
            ok = ~torch.isnan(zs)
            coef = torch.stack([torch.linalg.solve(xt[ok[:, h]].T @ xt[ok[:, h]] + eye, xt[ok[:, h]].T @ zs[ok[:, h], h])
                                for h in range(self.out_steps)], dim=1)
        self.linear.weight.copy_(coef[:-1].T.float())
        self.linear.bias.copy_(coef[-1].float())
        return self.eval()

    def forward(self, x: Tensor, tod: Tensor | None = None, return_features: bool = False):
        _check_windows(x, self.in_steps)
        h = x.transpose(1, 2)
        out = self.scale(self.linear(h).transpose(1, 2))
        return (out, h) if return_features else out
