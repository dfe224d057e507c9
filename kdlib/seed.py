"""Repeatable runs: one call seeds Python, NumPy and PyTorch."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def seed_everything(seed: int, deterministic: bool = False) -> torch.Generator:
    """Seed ``random``, NumPy and PyTorch (CPU and CUDA) with ``seed``.

    With ``deterministic=True`` also asks PyTorch for deterministic kernels (slower on
    CUDA; on the CPU, results with the same thread count are already repeatable).
    Returns a ``torch.Generator`` seeded likewise, for code that takes one.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds CUDA
    os.environ["PYTHONHASHSEED"] = str(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return torch.Generator().manual_seed(seed)
