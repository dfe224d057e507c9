r"""Small reusable figures for the book (matplotlib; import as ``kdlib.plots``).

Kept out of ``kdlib/__init__`` so that ``import kdlib`` does not import matplotlib.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .losses import softmax_t


def entropy(probs: Tensor, dim: int = -1) -> Tensor:
    r"""Shannon entropy in nats, :math:`H(p) = -\sum_i p_i \log p_i`, along ``dim`` (``0 \log 0 = 0``).

    Ranges from 0 (one-hot) to :math:`\log N` (uniform over ``N`` classes).
    """
    if probs.numel() == 0:
        raise ValueError("entropy of an empty tensor is undefined; pass a probability vector")
    if (probs < 0).any():
        raise ValueError("probabilities must be >= 0; did you pass logits? apply kdlib.softmax_t first")
    logs = torch.where(probs > 0, probs.log(), torch.zeros_like(probs))
    return -(probs * logs).sum(dim=dim)


def softmax_bars(
    ax,
    logits: Tensor,
    T: float = 1.0,
    class_names: Sequence[str] | None = None,
    highlight: int | None = None,
    log_scale: bool = False,
    color: str = "tab:blue",
    highlight_color: str = "tab:orange",
) -> Tensor:
    r"""Bar chart of :math:`p = \mathrm{softmax}(z / T)` for one logit vector ``z`` on ``ax``.

    The title shows ``T`` and the entropy :math:`H(p)` in nats (:func:`entropy`). Bar
    ``highlight`` (e.g. the true class) is drawn in ``highlight_color``. With
    ``log_scale=True`` the y axis is logarithmic, which shows the tiny probabilities
    that carry "dark knowledge" at ``T = 1``. Returns ``p`` (a 1-D tensor).
    """
    logits = torch.as_tensor(logits, dtype=torch.float64)
    if logits.dim() != 1:
        raise ValueError(f"softmax_bars draws one logit vector: expected shape (N,), got {tuple(logits.shape)}; "
                         "pick one row, e.g. logits[0]")
    n = logits.shape[0]
    names = [str(i) for i in range(n)] if class_names is None else [str(c) for c in class_names]
    if len(names) != n:
        raise ValueError(f"{len(names)} class names for {n} logits; give one name per class")
    if highlight is not None and not 0 <= highlight < n:
        raise ValueError(f"highlight must be a class index in [0, {n}), got {highlight}")
    p = softmax_t(logits, T)
    colors = [highlight_color if i == highlight else color for i in range(n)]
    ax.bar(range(n), p.numpy(), color=colors)
    ax.set_xticks(range(n), names)
    if log_scale:
        ax.set_yscale("log")
        ax.set_ylim(max(p.min().item() / 2, 1e-12), 1.5)
    else:
        ax.set_ylim(0, 1)
    ax.set_title(f"T = {T:g},  H = {entropy(p).item():.2f} nats")
    ax.set_xlabel("class")
    ax.set_ylabel("probability")
    return p
