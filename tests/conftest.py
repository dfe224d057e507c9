"""Shared fixtures. The datasets come from KDLIB_DATA (CI sets it to ../shared/data)."""

import os
from pathlib import Path

# The committed notebook outputs were computed with torch's AVX2 CPU kernels. On a CPU with AVX-512,
# torch, MKL and oneDNN would pick other kernels whose float sums round differently, and a training
# run drifts from the committed one after a few hundred steps. Pin the AVX2 kernels (before torch is
# imported, here and in every kernel nbval starts) so that nbval compares like with like; an explicit
# setting in the environment wins.
for _var, _isa in (("ATEN_CPU_CAPABILITY", "avx2"), ("MKL_ENABLE_INSTRUCTIONS", "AVX2"), ("ONEDNN_MAX_CPU_ISA", "AVX2")):
    os.environ.setdefault(_var, _isa)

import pytest  # noqa: E402
import torch  # noqa: E402

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
