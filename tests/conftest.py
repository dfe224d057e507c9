"""Shared fixtures. The datasets come from KDLIB_DATA (CI sets it to ../shared/data)."""

import os
from pathlib import Path

import pytest
import torch

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if "KDLIB_DATA" not in os.environ and SHARED.is_dir():
    os.environ["KDLIB_DATA"] = str(SHARED)

torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


@pytest.fixture(scope="session")
def mnist():
    import kdlib

    return kdlib.load_mnist()


@pytest.fixture(scope="session")
def metr():
    import kdlib

    return kdlib.load_metr_la_week()
