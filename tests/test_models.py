"""Model shapes, features behind a flag, graph use, and the profiling helpers."""

import pytest
import torch
from torch import nn

import kdlib
from kdlib import MLP, DiffusionMLP, SmallCNN, STIDStudent


def test_mnist_models_shapes_and_features():
    x = torch.randn(5, 1, 28, 28)
    for model, width in ((MLP((30, 30)), 30), (SmallCNN(), 128)):
        assert model(x).shape == (5, 10)
        out, feats = model(x, return_features=True)
        assert out.shape == (5, 10) and feats.shape == (5, width)
    # 784*30+30 + 30*30+30 + 30*10+10
    assert kdlib.count_parameters(MLP((30, 30))) == 24790


def _graph():
    adj = torch.zeros(6, 6)
    for i in range(5):
        adj[i, i + 1] = adj[i + 1, i] = 1.0
    return adj + torch.eye(6)


def test_student_is_graph_free_and_teacher_uses_the_graph():
    torch.manual_seed(0)
    adj = _graph()
    x, tod = torch.randn(2, 12, 6), torch.tensor([5, 100])
    student = STIDStudent(6, hidden=16).eval()
    teacher = DiffusionMLP(adj, hidden=8, layers=1, node_dim=4, tod_dim=4, hops=1, adaptive=False).eval()
    x2 = x.clone()
    x2[:, :, 2] += 1.0  # change sensor 2 only
    with torch.no_grad():
        ds = (student(x2, tod) - student(x, tod)).abs().amax(dim=(0, 1))
        dt = (teacher(x2, tod) - teacher(x, tod)).abs().amax(dim=(0, 1))
    assert ds[2] > 0 and torch.all(ds[[0, 1, 3, 4, 5]] == 0)
    assert dt[1] > 0 and dt[3] > 0  # neighbours of sensor 2 react
    out, feats = student(x, tod, return_features=True)
    assert out.shape == (2, 12, 6) and feats.shape == (2, 6, 16 + 8 + 8)
    out, feats = teacher(x, tod, return_features=True)
    assert out.shape == (2, 12, 6) and feats.shape == (2, 6, 8 + 4 + 4)


def test_traffic_models_output_mph_through_the_scaler():
    sc = kdlib.StandardScaler().fit(torch.tensor([50.0, 70.0]))
    m = STIDStudent(3, scaler=sc, node_dim=0, tod_dim=0)
    for p in m.parameters():
        nn.init.zeros_(p)
    out = m(torch.zeros(1, 12, 3), torch.tensor([0]))
    torch.testing.assert_close(out, torch.full((1, 12, 3), 60.0))


def test_traffic_models_reject_bad_shapes():
    m = STIDStudent(6)
    with pytest.raises(ValueError, match=r"\(batch, 12, 6\)"):
        m(torch.randn(2, 6, 12), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="tod must have shape"):
        m(torch.randn(2, 12, 6), torch.tensor([0]))
    with pytest.raises(ValueError, match="square"):
        DiffusionMLP(torch.zeros(3, 4))


def test_profiling_counts_a_linear_layer():
    lin = nn.Linear(100, 10)
    assert kdlib.count_parameters(lin) == 1010
    assert kdlib.flops_per_sample(lin, (torch.randn(8, 100),)) == 2 * 100 * 10
    assert kdlib.size_on_disk(lin) > 1010 * 4
    row = kdlib.profile(lin, lambda b: (torch.randn(b, 100),), repeats=3)
    assert row["params"] == 1010 and row["latency_ms@1"] > 0
    table = kdlib.compare({"a": (lin, lambda b: (torch.randn(b, 100),))}, repeats=3)
    assert list(table.index) == ["a"]


def test_checkpoint_roundtrip_and_tamper_detection(tmp_path):
    m = MLP((8,))
    digest = kdlib.save_checkpoint(m, "tiny", folder=tmp_path)
    assert len(digest) == 64
    m2 = kdlib.load_checkpoint(MLP((8,)), "tiny", folder=tmp_path)
    torch.testing.assert_close(m2.head.weight, m.head.weight)
    (tmp_path / "tiny.pt").write_bytes(b"corrupt")
    with pytest.raises(ValueError, match="corrupt or stale"):
        kdlib.load_checkpoint(MLP((8,)), "tiny", folder=tmp_path)
    with pytest.raises(FileNotFoundError, match="not found"):
        kdlib.load_checkpoint(MLP((8,)), "absent", folder=tmp_path)


def test_diffusion_mlp_uses_neighbours_and_ensemble_averages():
    torch.manual_seed(0)
    adj = _graph()
    x, tod = torch.randn(2, 12, 6), torch.tensor([5, 100])
    teacher = kdlib.DiffusionMLP(adj, hidden=8, layers=1, node_dim=4, tod_dim=4, adaptive=False, dropout=0.0).eval()
    x2 = x.clone()
    x2[:, :, 2] += 1.0
    with torch.no_grad():
        dt = (teacher(x2, tod) - teacher(x, tod)).abs().amax(dim=(0, 1))
    assert dt[1] > 0 and dt[3] > 0 and dt[0] > 0  # 2 hops reach sensor 0
    assert torch.all(dt[5] == 0)  # 3 hops away: out of reach
    out, feats = teacher(x, tod, return_features=True)
    assert out.shape == (2, 12, 6) and feats.shape == (2, 6, 16)
    # the neighbour feature P x equals the row-normalised average computed by hand
    p_fwd = kdlib.transition_matrices(adj)[0]
    torch.testing.assert_close(p_fwd[2], torch.tensor([0.0, 1, 1, 1, 0, 0]) / 3)
    other = kdlib.DiffusionMLP(adj, hidden=8, layers=1, node_dim=4, tod_dim=4, adaptive=True, graph_hidden=True).eval()
    ens = kdlib.Ensemble([teacher, other]).eval()
    with torch.no_grad():
        torch.testing.assert_close(ens(x, tod), (teacher(x, tod) + other(x, tod)) / 2)
        _, f = ens(x, tod, return_features=True)
    assert f.shape == (2, 6, 32)
    with pytest.raises(ValueError, match="at least one"):
        kdlib.Ensemble([])


def test_student_sizes_match_part3():
    # the sizes Part III trains, with the parameter counts its chapters print
    assert kdlib.STUDENT_SIZES == {"tiny": dict(hidden=16, node_dim=4, tod_dim=4),
                                   "small": dict(hidden=32, node_dim=8, tod_dim=8)}
    counts = {size: sum(p.numel() for p in STIDStudent(207, **cfg).parameters())
              for size, cfg in kdlib.STUDENT_SIZES.items()}
    assert counts == {"tiny": 3688, "small": 9668}


def test_hop_distances_against_breadth_first_search():
    from collections import deque

    g = torch.Generator().manual_seed(0)
    adj = (torch.rand(30, 30, generator=g) < 0.06).float() * torch.rand(30, 30, generator=g)  # directed, weighted
    dist = kdlib.hop_distances(adj)
    neighbours = [{j for j in range(30) if j != i and (adj[i, j] > 0 or adj[j, i] > 0)} for i in range(30)]
    for source in range(30):
        seen, queue = {source: 0}, deque([source])
        while queue:
            u = queue.popleft()
            for w in neighbours[u]:
                if w not in seen:
                    seen[w] = seen[u] + 1
                    queue.append(w)
        assert dist[source].tolist() == [seen.get(t, -1) for t in range(30)]
    assert (dist == -1).any() and dist.max() > 2  # the draw has unreachable pairs and long paths
    path = torch.diag(torch.ones(3), 1)  # 0 -> 1 -> 2 -> 3, one direction only
    assert kdlib.hop_distances(path)[3].tolist() == [3, 2, 1, 0]
