"""Shipped model weights, verified by SHA-256 when loaded.

The book commits small ``state_dict`` files under ``checkpoints/`` together with
``checkpoints/SHA256SUMS``; :func:`load_checkpoint` refuses a file whose hash differs.
``python -m kdlib.pretrain NAME`` regenerates a checkpoint from scratch.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .data import sha256sum

CHECKPOINT_DIR = Path(__file__).resolve().parents[1] / "checkpoints"
SUMS = "SHA256SUMS"


def _read_sums(folder: Path) -> dict[str, str]:
    f = folder / SUMS
    if not f.exists():
        return {}
    pairs = (line.split() for line in f.read_text().splitlines() if line.strip())
    return {name: digest for digest, name in pairs}


def save_checkpoint(model: nn.Module, name: str, folder: Path = CHECKPOINT_DIR) -> str:
    """Save ``model.state_dict()`` to ``folder/name.pt``, record its hash; return the hash."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.pt"
    torch.save(model.state_dict(), path)
    digest = sha256sum(path)
    sums = _read_sums(folder)
    sums[path.name] = digest
    (folder / SUMS).write_text("".join(f"{d}  {n}\n" for n, d in sorted(sums.items())))
    return digest


def load_checkpoint(model: nn.Module, name: str, folder: Path = CHECKPOINT_DIR) -> nn.Module:
    """Load ``folder/name.pt`` into ``model`` after checking its SHA-256 against ``SHA256SUMS``."""
    path = folder / f"{name}.pt"
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} not found; regenerate it with: python -m kdlib.pretrain {name}")
    expected = _read_sums(folder).get(path.name)
    actual = sha256sum(path)
    if expected != actual:
        raise ValueError(
            f"checkpoint {path} has sha256 {actual} but {folder / SUMS} lists {expected}: the file is "
            f"corrupt or stale; regenerate it with: python -m kdlib.pretrain {name}"
        )
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()
