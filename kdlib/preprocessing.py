r"""Preprocessing: scaling, chronological splits, forecasting windows, outages, augmentation, transfer sets.

:func:`traffic_splits` splits the time steps chronologically (70/10/20 %) *before* windowing, so no window crosses
a split; the :class:`StandardScaler` is fitted on the training part alone. Transfer sets (inputs the teacher labels,
without ground truth): :func:`perturbed_copies` makes noisy copies of the training windows,

.. math::
    \tilde x = x + \sigma \varepsilon, \quad \varepsilon \sim \mathcal N(0, I), \qquad
    \widetilde{\mathrm{tod}} = (\mathrm{tod} + \delta) \bmod 288, \quad \delta \sim \mathcal U\{-s, .., s\},

and :func:`with_transfer` appends them with the teacher's forecast as their only target.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import Tensor

from .data import STEPS_PER_DAY, MetrLAWeek, load_metr_la_week

__all__: list[str] = ["StandardScaler", "chronological_split", "chronological_halves", "sensor_outages", "hide_outages",
                      "sliding_windows", "TrafficWindows", "traffic_splits", "random_shift", "perturbed_copies",
                      "with_transfer"]


class StandardScaler:
    """z-score scaling ``(x - mean) / std``, fitted on the training split only; a zero std becomes 1.

    ``axis=None``: one global mean/std; else over those dimensions (``axis=0`` on ``(steps, nodes)``: per sensor).
    """

    def __init__(self, axis: int | tuple[int, ...] | None = None) -> None:
        self.axis = axis
        self.mean: Tensor | None = None
        self.std: Tensor | None = None

    def fit(self, x: Tensor) -> "StandardScaler":
        if self.axis is None:
            self.mean, self.std = x.mean(), x.std()
        else:
            self.mean = x.mean(dim=self.axis, keepdim=True)
            self.std = x.std(dim=self.axis, keepdim=True)
        self.std = torch.where(self.std > 0, self.std, torch.ones_like(self.std))
        return self

    def _check(self) -> tuple[Tensor, Tensor]:
        if self.mean is None or self.std is None:
            raise RuntimeError("StandardScaler is not fitted: call .fit(train_data) first.")
        return self.mean, self.std

    def transform(self, x: Tensor) -> Tensor:
        mean, std = self._check()
        return (x - mean.to(x)) / std.to(x)

    def inverse_transform(self, x: Tensor) -> Tensor:
        mean, std = self._check()
        return x * std.to(x) + mean.to(x)

    def fit_transform(self, x: Tensor) -> Tensor:
        return self.fit(x).transform(x)

    def __repr__(self) -> str:
        if self.mean is None:
            return "StandardScaler(unfitted)"
        if self.mean.numel() == 1:
            return f"StandardScaler(mean={self.mean.item():.4f}, std={self.std.item():.4f})"
        return f"StandardScaler(axis={self.axis}, shape={tuple(self.mean.shape)})"


def chronological_split(
    num_steps: int, fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)
) -> dict[str, range]:
    """Consecutive train / val / test ranges of ``int(f_train * num_steps)``, ``int(f_val * num_steps)``, rest steps."""
    if len(fractions) != 3 or any(f <= 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"fractions must be three positive numbers summing to 1, got {fractions}")
    n_train = int(fractions[0] * num_steps)
    n_val = int(fractions[1] * num_steps)
    return {
        "train": range(0, n_train),
        "val": range(n_train, n_train + n_val),
        "test": range(n_train + n_val, num_steps),
    }


def chronological_halves(num_windows: int, span: int) -> tuple[Tensor, Tensor]:
    """Indices of two blocks of windows, the earlier and the later half, sharing no time step (for out-of-fold).

    Window ``w`` covers steps ``[w, w + span)``: block 0 is ``[0, m)``, block 1 ``[m + span - 1, num_windows)``,
    ``m = (num_windows - span + 1) // 2``.
    """
    if span < 1 or num_windows < span + 1:
        raise ValueError(f"need span >= 1 and more than span windows, got num_windows={num_windows}, span={span}")
    m = (num_windows - span + 1) // 2
    return torch.arange(0, m), torch.arange(m + span - 1, num_windows)


def sliding_windows(series: Tensor, in_steps: int = 12, out_steps: int = 12) -> tuple[Tensor, Tensor]:
    """Every window of a time-first series: ``x`` ``(W, in_steps, ...)`` then ``y`` ``(W, out_steps, ...)``.

    ``W = steps - in_steps - out_steps + 1``; window ``w`` starts at step ``w``.
    """
    if in_steps < 1 or out_steps < 1:
        raise ValueError(f"in_steps and out_steps must be >= 1, got {in_steps}, {out_steps}")
    span = in_steps + out_steps
    if series.shape[0] < span:
        raise ValueError(f"a series of {series.shape[0]} steps is too short for windows of {span} steps")
    w = series.unfold(0, span, 1).movedim(-1, 1)  # (W, span, ...)
    return w[:, :in_steps].contiguous(), w[:, in_steps:].contiguous()


@dataclass
class TrafficWindows:
    """Forecasting windows of one split.

    Attributes:
        x: ``(W, in_steps, N)`` input speeds, z-scores of the training split.
        tod: ``(W,)`` int64 step of day (0..287) of the *last input* step.
        y: ``(W, out_steps, N)`` targets in mph; NaN where not a usable measurement (kdlib losses and metrics skip it).
        start: ``(W,)`` int64 index in the full series of each window's first input step.
        steps: the split's steps in the full series (e.g. ``range(0, 1411)`` for train).
        y_unmasked: ``y`` with nothing masked, only to show what the mask changes; never train or score on it.
    """

    x: Tensor
    tod: Tensor
    y: Tensor
    start: Tensor
    steps: range
    y_unmasked: Tensor | None = None

    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def inputs(self) -> tuple[Tensor, Tensor]:
        """``(x, tod)``: the arguments of the book's traffic models."""
        return self.x, self.tod


def traffic_splits(
    data: MetrLAWeek | None = None,
    in_steps: int = 12,
    out_steps: int = 12,
    fractions: tuple[float, float, float] = (0.7, 0.1, 0.2),
) -> tuple[dict[str, TrafficWindows], StandardScaler]:
    """Chronological train/val/test windows of the METR-LA week and the scaler (inputs scaled, targets in mph).

    Defaults: 1411 / 201 / 404 steps, 1388 / 178 / 381 windows. NaN targets (inputs stay finite): every target not in
    ``data.observed``, and a filled run's far end point ``last`` in each window whose inputs hold two or more points
    of that run (extrapolating them hits it exactly, so scoring it would reward copying the filler).
    """
    data = data if data is not None else load_metr_la_week()
    parts = chronological_split(data.speed.shape[0], fractions)
    scaler = StandardScaler().fit(data.speed[parts["train"].start : parts["train"].stop])
    sod = data.step_of_day
    target = data.observed_speed
    span = in_steps + out_steps
    j, first, last = torch.as_tensor(data.filled_runs, dtype=torch.long).reshape(-1, 3).unbind(1)
    out: dict[str, TrafficWindows] = {}
    for name, r in parts.items():
        seg = data.speed[r.start : r.stop]
        x, _ = sliding_windows(scaler.transform(seg), in_steps, out_steps)
        _, y_raw = sliding_windows(seg, in_steps, out_steps)
        _, y = sliding_windows(target[r.start : r.stop], in_steps, out_steps)
        start = torch.arange(x.shape[0]) + r.start
        # windows w with a run's `last` among their targets (w + in_steps <= last < w + span) and >= 2 of its
        # points among their inputs (w + in_steps - 1 >= first + 1), inside this split (r.start <= w <= r.stop - span)
        lo = torch.maximum(torch.maximum(last - span + 1, first + 2 - in_steps), torch.tensor(r.start))
        hi = torch.minimum(last - in_steps, torch.tensor(r.stop - span))
        w = lo[:, None] + torch.arange(out_steps)  # at most out_steps windows per run
        hit = w <= hi[:, None]
        w, jj, ll = w[hit], j[:, None].expand_as(hit)[hit], last[:, None].expand_as(hit)[hit]
        y[w - r.start, ll - w - in_steps, jj] = float("nan")
        out[name] = TrafficWindows(x=x, tod=sod[start + in_steps - 1], y=y, start=start, steps=r, y_unmasked=y_raw)
    return out, scaler


def sensor_outages(num_steps: int, num_nodes: int, rate: float, length: int, seed: int = 0) -> Tensor:
    """``(num_steps, num_nodes)`` bool mask of simulated outages (True = lost), seeded: each sensor's blocks of
    ``length`` steps (72 = 6 hours) are lost independently with probability ``rate``."""
    if not 0 <= rate <= 1 or length < 1:
        raise ValueError(f"need 0 <= rate <= 1 and length >= 1, got rate={rate}, length={length}")
    blocks = -(-num_steps // length)
    lost = torch.rand(blocks, num_nodes, generator=torch.Generator().manual_seed(seed)) < rate
    return lost.repeat_interleave(length, dim=0)[:num_steps]


def hide_outages(windows: TrafficWindows, lost: Tensor, steps_per_day: int = STEPS_PER_DAY) -> TrafficWindows:
    """``windows`` without the readings ``lost`` (``(len(windows.steps), N)``): lost targets become NaN, lost inputs
    the sensor's mean at that time of day over its surviving inputs (else its overall mean, else 0)."""
    i, o = windows.x.shape[1], windows.y.shape[1]
    if lost.shape != (len(windows.steps), windows.x.shape[2]) or len(windows.steps) - i - o + 1 != len(windows):
        raise ValueError(f"lost must be (split steps, sensors) = {(len(windows.steps), windows.x.shape[2])}, "
                         f"got {tuple(lost.shape)}")
    lost_x, lost_y = sliding_windows(lost, i, o)
    # time of day of every input step; each step's reading once (as the first input step of a window)
    tod_x = (windows.tod[:, None] - (i - 1) + torch.arange(i)) % steps_per_day  # (W, i)
    seen = ~lost_x[:, 0]  # (W, N)
    value = torch.where(seen, windows.x[:, 0], 0.0)
    total = torch.zeros(steps_per_day, value.shape[1]).index_add_(0, tod_x[:, 0], value)
    count = torch.zeros(steps_per_day, value.shape[1]).index_add_(0, tod_x[:, 0], seen.float())
    sensor_mean = value.sum(0) / seen.sum(0).clamp(min=1)
    profile = torch.where(count > 0, total / count.clamp(min=1), sensor_mean)  # (steps_per_day, N)
    x = torch.where(lost_x, profile[tod_x], windows.x)
    return replace(windows, x=x, y=windows.y.masked_fill(lost_y, float("nan")))


# --- Augmentation and transfer sets -----------------------------------------


def random_shift(images: Tensor, max_shift: int = 2, generator: torch.Generator | None = None) -> Tensor:
    """Translate each ``(B, C, H, W)`` image by its own random offset in ``[-max_shift, max_shift]`` pixels; pixels
    shifted in take the batch's minimum (the background)."""
    if images.dim() != 4:
        raise ValueError(f"images must be (batch, channels, height, width), got {tuple(images.shape)}")
    if max_shift < 0:
        raise ValueError(f"max_shift must be >= 0, got {max_shift}")
    if max_shift == 0:
        return images
    (b, c, h, w), s, dev = images.shape, max_shift, images.device
    padded = F.pad(images, (s, s, s, s), value=float(images.min()))
    dy = torch.randint(-s, s + 1, (b,), generator=generator).to(dev)
    dx = torch.randint(-s, s + 1, (b,), generator=generator).to(dev)
    rows = (torch.arange(h, device=dev) + s)[None, :] - dy[:, None]  # (B, H)
    cols = (torch.arange(w, device=dev) + s)[None, :] - dx[:, None]  # (B, W)
    bi = torch.arange(b, device=dev)[:, None, None, None]
    ci = torch.arange(c, device=dev)[None, :, None, None]
    return padded[bi, ci, rows[:, None, :, None], cols[:, None, None, :]]


def perturbed_copies(
    x: Tensor,
    tod: Tensor,
    copies: int = 2,
    noise_std: float = 0.3,
    tod_shift: int = 0,
    seed: int = 0,
    steps_per_day: int = STEPS_PER_DAY,
) -> tuple[Tensor, Tensor]:
    r"""``copies`` perturbed versions of ``(x, tod)``, stacked: ``(copies * W, T, N)``, ``(copies * W,)``.

    ``noise_std`` (:math:`\sigma` above) is in z-score units; ``tod_shift`` (``s``) is the largest shift in steps.
    """
    if copies < 1:
        raise ValueError(f"copies must be >= 1, got {copies}")
    if noise_std < 0 or tod_shift < 0:
        raise ValueError(f"noise_std and tod_shift must be >= 0, got {noise_std} and {tod_shift}")
    if tod.shape != x.shape[:1]:
        raise ValueError(f"tod must have shape ({x.shape[0]},), got {tuple(tod.shape)}")
    g = torch.Generator().manual_seed(seed)
    xs, ts = [], []
    for _ in range(copies):
        xs.append(x + noise_std * torch.randn(x.shape, generator=g, dtype=x.dtype))
        shift = torch.randint(-tod_shift, tod_shift + 1, tod.shape, generator=g)
        ts.append((tod + shift) % steps_per_day)
    return torch.cat(xs), torch.cat(ts)


def with_transfer(
    inputs: tuple[Tensor, Tensor], y: Tensor, teacher_y: Tensor,
    transfer_inputs: tuple[Tensor, Tensor], transfer_teacher_y: Tensor,
) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor, Tensor]]:
    """Labelled plus teacher-only transfer windows for :func:`kdlib.fit`: ``((x, tod), (y, teacher_y, mask))``; a
    transfer window's label is the teacher's forecast and its ``mask`` 0, so a masked label term ignores it."""
    if transfer_teacher_y.shape[1:] != y.shape[1:] or teacher_y.shape != y.shape:
        raise ValueError("y, teacher_y and transfer_teacher_y must share the (out_steps, N) shape")
    x = torch.cat([inputs[0], transfer_inputs[0]])
    tod = torch.cat([inputs[1], transfer_inputs[1]])
    mask = torch.cat([torch.ones_like(y), torch.zeros_like(transfer_teacher_y)])
    return (x, tod), (torch.cat([y, transfer_teacher_y]), torch.cat([teacher_y, transfer_teacher_y]), mask)
