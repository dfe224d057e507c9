"""Batch augmentations for :func:`kdlib.fit`'s ``augment=`` hook (they take and return a tuple of inputs)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def random_shift(images: Tensor, max_shift: int = 2, generator: torch.Generator | None = None) -> Tensor:
    """Translate each image by its own random integer offset in ``[-max_shift, max_shift]`` pixels.

    ``images``: ``(B, C, H, W)``. Pixels shifted in from outside are the image's minimum
    value (the background of a normalised MNIST digit). Hinton et al. (2015) trained their
    MNIST teacher with such jitter.
    """
    if images.dim() != 4:
        raise ValueError(f"images must be (batch, channels, height, width), got {tuple(images.shape)}")
    if max_shift < 0:
        raise ValueError(f"max_shift must be >= 0, got {max_shift}")
    if max_shift == 0:
        return images
    b, c, h, w = images.shape
    s = max_shift
    padded = F.pad(images, (s, s, s, s), value=float(images.min()))
    dy = torch.randint(-s, s + 1, (b,), generator=generator).to(images.device)
    dx = torch.randint(-s, s + 1, (b,), generator=generator).to(images.device)
    rows = (torch.arange(h, device=images.device) + s)[None, :] - dy[:, None]  # (B, H)
    cols = (torch.arange(w, device=images.device) + s)[None, :] - dx[:, None]  # (B, W)
    bi = torch.arange(b, device=images.device)[:, None, None, None]
    ci = torch.arange(c, device=images.device)[None, :, None, None]
    return padded[bi, ci, rows[:, None, :, None], cols[:, None, None, :]]
