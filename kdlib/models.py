"""The book's models: MNIST classifiers and traffic forecasters.

MNIST: ``x`` ``(B, 1, 28, 28)`` or ``(B, 784)`` -> ``(B, 10)`` logits. Traffic: scaled speeds ``x`` ``(B, in_steps, N)``
and ``tod`` ``(B,)`` (step of day, 0..287, of the last input step) -> ``(B, out_steps, N)`` mph (the model stores the
scaler's statistics). ``forward(..., return_features=True)`` returns ``(output, features)``, the representation right
before the output layer (what hint distillation matches).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .data import STEPS_PER_DAY
from .preprocessing import StandardScaler

__all__: list[str] = ["MLP", "SmallCNN", "STIDStudent", "STUDENT_SIZES", "DiffusionMLP", "Ensemble",
                      "hop_distances", "transition_matrices", "add_supports", "supports", "diffuse"]


# --- MNIST ------------------------------------------------------------------


class MLP(nn.Module):
    """Classifier ``784 -> hidden[0] -> ... -> hidden[-1] -> classes``, ReLU (and dropout) between.

    ``MLP((30, 30))`` is the book's tiny student (~24.8k parameters). Features: the last hidden layer.
    """

    def __init__(
        self,
        hidden: Sequence[int] = (800, 800),
        in_features: int = 784,
        num_classes: int = 10,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if not hidden:
            raise ValueError("hidden must list at least one layer size, e.g. (30, 30)")
        sizes = [in_features, *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(sizes[-1], num_classes)
        self.hidden = tuple(hidden)

    def forward(self, x: Tensor, return_features: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        h = self.body(x.flatten(1))
        out = self.head(h)
        return (out, h) if return_features else out


class SmallCNN(nn.Module):
    """The MNIST teacher (~422k parameters): two 3x3 conv - ReLU - 2x2 max-pool stages, dense ``7*7*c2 -> hidden`` -
    ReLU - dropout - dense ``hidden -> 10``. Features: the hidden dense layer ``(B, hidden)``."""

    def __init__(
        self,
        channels: tuple[int, int] = (32, 64),
        hidden: int = 128,
        num_classes: int = 10,
        dropout: float = 0.25,
    ) -> None:
        super().__init__()
        c1, c2 = channels
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
        )
        self.fc = nn.Sequential(nn.Linear(7 * 7 * c2, hidden), nn.ReLU(), nn.Dropout(dropout))
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x: Tensor, return_features: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        if x.dim() == 2:
            x = x.view(-1, 1, 28, 28)
        h = self.fc(self.features(x))
        out = self.head(h)
        return (out, h) if return_features else out


# --- Traffic forecasting: graph support -------------------------------------


def hop_distances(adj: Tensor) -> Tensor:
    """Shortest-path length in hops between every two nodes of the graph taken as undirected, ``(N, N)`` int64.

    -1 where no path exists. Breadth-first search by matrix products: hop ``h`` reaches what a walk of ``h`` steps does.
    """
    reach = ((adj > 0) | (adj.T > 0)).long()
    reach.fill_diagonal_(0)
    n = len(adj)
    dist = torch.full((n, n), -1, dtype=torch.long)
    dist.fill_diagonal_(0)
    frontier = torch.eye(n, dtype=torch.long)
    for hop in range(1, n):
        frontier = ((frontier @ reach) > 0).long()
        new = (frontier > 0) & (dist < 0)
        if not new.any():
            break
        dist[new] = hop
    return dist


def transition_matrices(adj: Tensor) -> list[Tensor]:
    """Random walks ``[P_f, P_b] = [D_out^{-1} A, D_in^{-1} A^T]`` of a directed graph (DCRNN, Graph WaveNet); a row
    with no edges stays zero. ``k`` hops of a node-first signal ``X``: ``P^k X``."""
    if adj.dim() != 2 or adj.shape[0] != adj.shape[1]:
        raise ValueError(f"adj must be a square (N, N) matrix, got shape {tuple(adj.shape)}")
    mats = []
    for a in (adj, adj.T):
        deg = a.sum(1, keepdim=True)
        mats.append(torch.where(deg > 0, a / deg.clamp_min(1e-12), torch.zeros_like(a)))
    return mats


def add_supports(model: nn.Module, adj: Tensor, adaptive: bool = True, adaptive_dim: int = 10) -> int:
    """Register ``support0``/``support1`` (random walks of ``adj``) and, if ``adaptive``, ``e1``/``e2`` on ``model``
    (``state_dict`` keys); return the number of supports (2 or 3)."""
    n = adj.shape[0]
    for i, p in enumerate(transition_matrices(adj.float())):
        model.register_buffer(f"support{i}", p)
    model.adaptive = adaptive
    if adaptive:
        model.e1 = nn.Parameter(torch.randn(n, adaptive_dim) * 0.1)
        model.e2 = nn.Parameter(torch.randn(adaptive_dim, n) * 0.1)
    return 2 + int(adaptive)


def supports(model: nn.Module) -> list[Tensor]:
    """The model's supports: ``[P_f, P_b]`` plus the adaptive ``softmax(relu(e1 @ e2))`` (Graph WaveNet)."""
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


# --- Traffic forecasting: models --------------------------------------------


class _OutputScale(nn.Module):
    """Holds a fitted scaler's mean/std as buffers; ``forward`` maps z-scores to mph."""

    def __init__(self, scaler: StandardScaler | None) -> None:
        super().__init__()
        mean, std = (0.0, 1.0) if scaler is None else (float(scaler.mean), float(scaler.std))
        self.register_buffer("mean", torch.tensor(mean))
        self.register_buffer("std", torch.tensor(std))

    def forward(self, z: Tensor) -> Tensor:
        return z * self.std + self.mean


def _add_embedding_mlp(
    model: nn.Module, in_features: int, num_nodes: int, hidden: int, node_dim: int, tod_dim: int,
    layers: int, dropout: float, steps_per_day: int,
) -> int:
    """Give ``model`` the per-sensor core of the STID-like models and return its width: ``embed``, ``node_emb``,
    ``tod_emb``, ``blocks`` (attributes of ``model``, so the ``state_dict`` keys stay ``embed.*``, ...)."""
    model.embed = nn.Linear(in_features, hidden)
    model.node_emb = nn.Parameter(torch.randn(num_nodes, node_dim) * 0.1) if node_dim else None
    model.tod_emb = nn.Embedding(steps_per_day, tod_dim) if tod_dim else None
    width = hidden + node_dim + tod_dim
    model.blocks = nn.ModuleList(
        nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Dropout(dropout), nn.Linear(width, width))
        for _ in range(layers)
    )
    return width


def _embedding_mlp(model: nn.Module, inputs: Tensor, tod: Tensor) -> Tensor:
    """Per-sensor ``inputs`` ``(B, N, in_features)`` -> hidden ``(B, N, width)`` through that core."""
    b, n, _ = inputs.shape
    parts = [model.embed(inputs)]
    if model.node_emb is not None:
        parts.append(model.node_emb.expand(b, -1, -1))
    if model.tod_emb is not None:
        parts.append(model.tod_emb(tod)[:, None, :].expand(-1, n, -1))
    h = torch.cat(parts, dim=-1)
    for block in model.blocks:
        h = h + block(h)
    return h


def _check_traffic_input(x: Tensor, tod: Tensor, in_steps: int, num_nodes: int) -> None:
    if x.dim() != 3 or x.shape[1] != in_steps or x.shape[2] != num_nodes:
        raise ValueError(f"x must have shape (batch, {in_steps}, {num_nodes}) = (batch, in_steps, sensors), "
                         f"got {tuple(x.shape)}")
    if tod.shape != (x.shape[0],):
        raise ValueError(f"tod must have shape ({x.shape[0]},): one step-of-day per window, got {tuple(tod.shape)}")


class DiffusionMLP(nn.Module):
    r"""Graph teacher that is cheap on a CPU: STID's per-sensor MLP fed with diffused neighbour histories.

    Sensor ``i``'s input: its ``in_steps`` scaled speeds and, as in DCRNN / Graph WaveNet (Li et al. 2018; Wu et al.
    2019), ``(P^k X)_i`` for every support ``P`` (:func:`supports`) and hop ``k = 1..hops``:

    .. math::
        u_i = \big[X_i,\; (P_1 X)_i, \dots, (P_S^K X)_i\big] \in \mathbb{R}^{T (1 + S K)} .

    Then as :class:`STIDStudent`; ``graph_hidden=True`` adds one diffusion of the hidden vectors before the head,
    ``h + W_g [P_1 h, .., P_S h]``. Features: the per-sensor hidden vector ``(B, N, width)``.
    """

    def __init__(
        self,
        adj: Tensor,
        scaler: StandardScaler | None = None,
        in_steps: int = 12,
        out_steps: int = 12,
        hidden: int = 128,
        layers: int = 2,
        node_dim: int = 32,
        tod_dim: int = 32,
        hops: int = 2,
        adaptive: bool = True,
        adaptive_dim: int = 10,
        graph_hidden: bool = False,
        dropout: float = 0.1,
        steps_per_day: int = STEPS_PER_DAY,
    ) -> None:
        super().__init__()
        if hops < 1:
            raise ValueError(f"hops must be >= 1 (number of diffusion steps), got {hops}")
        n = adj.shape[0]
        self.num_nodes, self.in_steps, self.out_steps, self.hops = n, in_steps, out_steps, hops
        num_supports = add_supports(self, adj, adaptive, adaptive_dim)
        width = _add_embedding_mlp(self, in_steps * (1 + num_supports * hops), n, hidden, node_dim, tod_dim,
                                   layers, dropout, steps_per_day)
        self.graph_mix = nn.Linear(width * num_supports, width) if graph_hidden else None
        self.head = nn.Linear(width, out_steps)
        self.scale = _OutputScale(scaler)

    def forward(self, x: Tensor, tod: Tensor, return_features: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        _check_traffic_input(x, tod, self.in_steps, self.num_nodes)
        xn = x.transpose(1, 2)  # (B, N, T)
        mats = supports(self)
        h = _embedding_mlp(self, torch.cat([xn, *diffuse(xn, mats, self.hops)], dim=-1), tod)
        if self.graph_mix is not None:
            h = h + self.graph_mix(torch.cat(diffuse(h, mats, 1), dim=-1))
        out = self.scale(self.head(h).transpose(1, 2))
        return (out, h) if return_features else out


class Ensemble(nn.Module):
    r"""Average of several models' outputs: :math:`\hat y = \frac{1}{M} \sum_m f_m(x)`.

    Features: the members' ones, concatenated on the last dimension.
    """

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if len(members) == 0:
            raise ValueError("an Ensemble needs at least one member model")
        self.members = nn.ModuleList(members)

    def forward(self, *inputs: Tensor, return_features: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        if not return_features:
            return torch.stack([m(*inputs) for m in self.members]).mean(0)
        outs, feats = zip(*(m(*inputs, return_features=True) for m in self.members))
        return torch.stack(outs).mean(0), torch.cat(feats, dim=-1)


class STIDStudent(nn.Module):
    """Graph-free per-sensor MLP forecaster (after STID, Shao et al. 2022): no sensor sees another's readings.

    Per sensor: its ``in_steps`` scaled speeds -> linear embedding (``hidden``), joined by a sensor (``node_dim``) and
    a time-of-day (``tod_dim``) embedding; ``layers`` residual blocks ``h + W_2 dropout(relu(W_1 h))``; linear map to
    ``out_steps``. Features: the hidden vector ``(B, N, hidden + node_dim + tod_dim)``.
    """

    def __init__(
        self,
        num_nodes: int,
        scaler: StandardScaler | None = None,
        in_steps: int = 12,
        out_steps: int = 12,
        hidden: int = 64,
        layers: int = 1,
        node_dim: int = 8,
        tod_dim: int = 8,
        dropout: float = 0.0,
        steps_per_day: int = STEPS_PER_DAY,
    ) -> None:
        super().__init__()
        self.num_nodes, self.in_steps, self.out_steps = num_nodes, in_steps, out_steps
        width = _add_embedding_mlp(self, in_steps, num_nodes, hidden, node_dim, tod_dim, layers, dropout,
                                   steps_per_day)
        self.head = nn.Linear(width, out_steps)
        self.scale = _OutputScale(scaler)

    def forward(self, x: Tensor, tod: Tensor, return_features: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        _check_traffic_input(x, tod, self.in_steps, self.num_nodes)
        h = _embedding_mlp(self, x.transpose(1, 2), tod)  # (B, N, width)
        out = self.scale(self.head(h).transpose(1, 2))
        return (out, h) if return_features else out


STUDENT_SIZES: dict[str, dict[str, int]] = {
    "tiny": dict(hidden=16, node_dim=4, tod_dim=4),
    "small": dict(hidden=32, node_dim=8, tod_dim=8),
}
"""The two :class:`STIDStudent` sizes of Part III (about 3.7k and 9.7k parameters on the
207 METR-LA sensors): ``STIDStudent(207, scaler, **STUDENT_SIZES["small"])``."""
