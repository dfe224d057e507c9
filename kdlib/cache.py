"""Cache model outputs (e.g. a teacher's logits) on disk, keyed by the weights and the inputs.

A teacher's forward pass over the 60,000 MNIST training images takes tens of seconds on
two CPU cores; every distillation notebook needs those logits. :func:`cached_predict`
computes them once and stores them under :func:`cache_dir` (git-ignored), in a file
named by a SHA-256 over the model's ``state_dict``, the inputs and the forward keyword
arguments: new weights or new inputs give a new file, so a stale cache cannot be read.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import Tensor, nn

from .data import user_dir
from .train import Tensors, _as_tuple, predict

CACHE_ENV = "KDLIB_CACHE"


def cache_dir() -> Path:
    """``$KDLIB_CACHE`` if set, else ``<repository>/.cache`` in a checkout, else ``~/.cache/kdlib``."""
    return user_dir(CACHE_ENV, ".cache")


def tensor_digest(*tensors: Tensor) -> str:
    """Hex SHA-256 over the dtypes, shapes and bytes of ``tensors`` (in order)."""
    h = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def cached_predict(
    model: nn.Module, inputs: Tensors, folder: Path | None = None, **forward_kwargs
) -> Tensor | tuple[Tensor, ...]:
    """:func:`kdlib.predict` with a disk cache; same arguments and return value.

    The cache file is ``folder/outputs-<sha256[:20]>.pt``, the hash covering the
    ``state_dict`` (names and values), the inputs and ``forward_kwargs``. When the folder
    cannot be written, the outputs are returned without caching.
    """
    folder = Path(folder) if folder is not None else cache_dir()
    state = model.state_dict()
    h = hashlib.sha256()
    h.update(repr(sorted(forward_kwargs.items())).encode())
    h.update(",".join(state).encode())
    h.update(tensor_digest(*state.values()).encode())
    h.update(tensor_digest(*_as_tuple(inputs)).encode())
    path = folder / f"outputs-{h.hexdigest()[:20]}.pt"
    if path.exists():
        out = torch.load(path, weights_only=True)
        return tuple(out) if isinstance(out, list) else out
    out = predict(model, inputs, **forward_kwargs)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(list(out) if isinstance(out, tuple) else out, tmp)
        tmp.replace(path)
    except OSError:
        pass
    return out
