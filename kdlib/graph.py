r"""Graph support shared by the graph models: random-walk matrices, an adaptive adjacency, diffusion.

DCRNN (Li et al. 2018) and Graph WaveNet (Wu et al. 2019) diffuse a node signal over
the road graph with the forward and backward random-walk matrices
:math:`P_f = D_{out}^{-1} A`, :math:`P_b = D_{in}^{-1} A^\top`, and Graph WaveNet adds a
learned adjacency :math:`\mathrm{softmax}(\mathrm{relu}(E_1 E_2))`. :func:`add_supports`
gives a model those matrices (buffers ``support0``, ``support1``; parameters ``e1``,
``e2`` when adaptive) and :func:`supports` returns them; :class:`DiffusionConv` and
:func:`diffuse` apply them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__: list[str] = ["transition_matrices", "add_supports", "supports", "diffuse", "DiffusionConv"]


def transition_matrices(adj: Tensor) -> list[Tensor]:
    """Forward and backward random-walk matrices of a directed graph (DCRNN).

    ``P_f = D_out^{-1} A`` and ``P_b = D_in^{-1} A^T``; a row with no edges stays zero.
    Diffusion of a node signal ``X`` (nodes first) by ``k`` hops is ``P^k X``.
    """
    if adj.dim() != 2 or adj.shape[0] != adj.shape[1]:
        raise ValueError(f"adj must be a square (N, N) matrix, got shape {tuple(adj.shape)}")
    mats = []
    for a in (adj, adj.T):
        deg = a.sum(1, keepdim=True)
        mats.append(torch.where(deg > 0, a / deg.clamp_min(1e-12), torch.zeros_like(a)))
    return mats


def add_supports(model: nn.Module, adj: Tensor, adaptive: bool = True, adaptive_dim: int = 10) -> int:
    """Register the random-walk matrices of ``adj`` (and, if ``adaptive``, ``e1``/``e2``) on ``model``.

    Returns the number of supports (2, or 3 with the adaptive adjacency). The names
    ``support0``, ``support1``, ``e1``, ``e2`` are the models' ``state_dict`` keys.
    """
    n = adj.shape[0]
    for i, p in enumerate(transition_matrices(adj.float())):
        model.register_buffer(f"support{i}", p)
    model.adaptive = adaptive
    if adaptive:
        model.e1 = nn.Parameter(torch.randn(n, adaptive_dim) * 0.1)
        model.e2 = nn.Parameter(torch.randn(adaptive_dim, n) * 0.1)
    return 2 + int(adaptive)


def supports(model: nn.Module) -> list[Tensor]:
    """The model's supports: ``[P_f, P_b]`` plus ``softmax(relu(e1 @ e2))`` when adaptive."""
    s = [model.support0, model.support1]
    if model.adaptive:
        s.append(F.softmax(F.relu(model.e1 @ model.e2), dim=1))
    return s


def diffuse(x: Tensor, mats: Sequence[Tensor], hops: int) -> list[Tensor]:
    """``[P^k x for P in mats for k in 1..hops]`` for node-first ``x`` of shape ``(B, N, F)``."""
    out = []
    for p in mats:
        z = x
        for _ in range(hops):
            z = p @ z  # (N, N) @ (B, N, F): neighbour average
            out.append(z)
    return out


class DiffusionConv(nn.Module):
    """Diffusion graph convolution (Li et al. 2018; Wu et al. 2019).

    ``H' = W_0 H + sum_{P in supports} sum_{k=1..K} W_{P,k} (P^k H)``, applied to a
    ``(B, C, N, T)`` tensor; each ``W`` is a 1x1 convolution mixing channels.
    """

    def __init__(self, c_in: int, c_out: int, num_supports: int, hops: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        self.hops = hops
        self.mlp = nn.Conv2d(c_in * (1 + num_supports * hops), c_out, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: Tensor, supports: Sequence[Tensor]) -> Tensor:
        out = [h]
        for p in supports:
            x = h
            for _ in range(self.hops):
                x = torch.einsum("ij,bcjt->bcit", p, x)
                out.append(x)
        return self.dropout(self.mlp(torch.cat(out, dim=1)))
