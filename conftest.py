"""Pin torch's CPU kernels for every pytest run in this repository (unit tests and nbval alike).

The committed notebook outputs were computed with torch's AVX2 CPU kernels. On a CPU with AVX-512,
torch, MKL and oneDNN pick other kernels whose floating-point sums round differently, and a training
run drifts from the committed one after a few hundred steps. Setting these before torch is imported
(here, and in every kernel nbval starts, which inherits the environment) makes nbval compare like
with like. An explicit setting in the environment wins. This file sits at the repository root so
that it also applies to a single notebook, ``pytest book/part2/temperature.ipynb``.
"""

import os
import platform

if platform.machine().lower() in ("x86_64", "amd64"):  # elsewhere (ARM) these names mean nothing: torch would warn
    for _var, _isa in (("ATEN_CPU_CAPABILITY", "avx2"), ("MKL_ENABLE_INSTRUCTIONS", "AVX2"), ("ONEDNN_MAX_CPU_ISA", "AVX2")):
        os.environ.setdefault(_var, _isa)
