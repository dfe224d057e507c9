r"""Transfer sets for distillation: extra inputs that need no labels, only the teacher.

A student can learn from the teacher on inputs that have no ground truth. Here they are
perturbed copies of the training windows: each copy adds Gaussian noise to the scaled
input speeds and may move the time of day,

.. math::
    \tilde x = x + \sigma \varepsilon, \quad \varepsilon \sim \mathcal N(0, I), \qquad
    \widetilde{\mathrm{tod}} = (\mathrm{tod} + \delta) \bmod 288, \quad \delta \sim \mathcal U\{-s, .., s\}.

The teacher's forecast is the only target on such a window (its label term is masked out
in :func:`kdlib.losses.output_distillation_loss`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .data import STEPS_PER_DAY


def perturbed_copies(
    x: Tensor,
    tod: Tensor,
    copies: int = 2,
    noise_std: float = 0.3,
    tod_shift: int = 0,
    seed: int = 0,
    steps_per_day: int = STEPS_PER_DAY,
) -> tuple[Tensor, Tensor]:
    """``copies`` perturbed versions of the windows ``(x, tod)``, stacked: ``(copies * W, T, N)``, ``(copies * W,)``.

    ``noise_std`` is in scaled (z-score) units; ``tod_shift`` is the largest shift in steps.
    Deterministic for a given ``seed``.
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
    """Labelled windows plus teacher-only transfer windows, ready for :func:`kdlib.fit`.

    Returns ``((x, tod), (y, teacher_y, mask))``: on transfer windows the label slot holds the
    teacher's forecast and ``mask`` is 0, so a masked label term ignores them.
    """
    if transfer_teacher_y.shape[1:] != y.shape[1:] or teacher_y.shape != y.shape:
        raise ValueError("y, teacher_y and transfer_teacher_y must share the (out_steps, N) shape")
    x = torch.cat([inputs[0], transfer_inputs[0]])
    tod = torch.cat([inputs[1], transfer_inputs[1]])
    mask = torch.cat([torch.ones_like(y), torch.zeros_like(transfer_teacher_y)])
    return (x, tod), (torch.cat([y, transfer_teacher_y]), torch.cat([teacher_y, transfer_teacher_y]), mask)
