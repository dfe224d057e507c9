"""cached_predict, the naive loader timing helpers and the heat map."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdlib import predict
from kdlib.files import tensor_digest
from kdlib.teachers import cached_predict
from kdlib.profiling import naive_mnist_loader, seconds_per_batch
from kdlib.plots import heatmap


def test_tensor_digest_sees_values_dtype_and_shape():
    a = torch.arange(6.0)
    assert tensor_digest(a) == tensor_digest(a.clone())
    assert tensor_digest(a) != tensor_digest(a.reshape(2, 3))
    assert tensor_digest(a) != tensor_digest(a.double())
    b = a.clone()
    b[3] += 1e-6
    assert tensor_digest(a) != tensor_digest(b)
    # 0-d tensors (BatchNorm's num_batches_tracked, scalar buffers) hash too
    assert tensor_digest(torch.tensor(2.0)) != tensor_digest(torch.tensor(3.0))
    assert tensor_digest(torch.tensor(2.0)) != tensor_digest(torch.tensor([2.0]))
    assert len(tensor_digest(*nn.BatchNorm1d(3).state_dict().values())) == 64


def test_cached_predict_matches_predict_and_reuses_the_file(tmp_path):
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    x = torch.randn(50, 4)
    out = cached_predict(model, x, folder=tmp_path)
    torch.testing.assert_close(out, predict(model, x))
    files = list(tmp_path.glob("outputs-*.pt"))
    assert len(files) == 1
    # Reading back: tamper with the file's content to prove the cache is what is returned.
    torch.save(torch.zeros(50, 3), files[0])
    torch.testing.assert_close(cached_predict(model, x, folder=tmp_path), torch.zeros(50, 3))
    # New weights -> new key -> recomputed.
    with torch.no_grad():
        model.weight.add_(1.0)
    torch.testing.assert_close(cached_predict(model, x, folder=tmp_path), predict(model, x))
    assert len(list(tmp_path.glob("outputs-*.pt"))) == 2


class _Scaled(nn.Module):
    """``inner(x) * k``: ``k`` is a plain attribute, outside the state_dict."""

    def __init__(self, inner, k):
        super().__init__()
        self.inner, self.k = inner, k

    def forward(self, x):
        return self.inner(x) * self.k


class _Shifted(_Scaled):
    def forward(self, x):
        return self.inner(x) + self.k


def test_cached_predict_sees_class_and_state_outside_the_state_dict(tmp_path):
    torch.manual_seed(0)
    inner, x = nn.Linear(4, 3), torch.randn(10, 4)
    for model in (_Scaled(inner, 1), _Scaled(inner, 3), _Shifted(inner, 3), _Scaled(inner, torch.tensor(2.0))):
        torch.testing.assert_close(cached_predict(model, x, folder=tmp_path), predict(model, x))
    assert len(list(tmp_path.glob("outputs-*.pt"))) == 4
    # training mode is not part of the key (predict always runs in eval mode)
    cached_predict(_Scaled(inner, 1).train(), x, folder=tmp_path)
    assert len(list(tmp_path.glob("outputs-*.pt"))) == 4


def test_cached_predict_key_covers_what_the_hash_cannot_see(tmp_path):
    torch.manual_seed(0)
    inner, x = nn.Linear(4, 3), torch.randn(10, 4)
    factor = {"k": 1.0}

    class Closure(nn.Module):  # state in a dict the hash cannot inspect
        def forward(self, x):
            return inner(x) * factor["k"]

    model = Closure()
    cached_predict(model, x, folder=tmp_path, key="k=1")
    factor["k"] = 3.0
    torch.testing.assert_close(cached_predict(model, x, folder=tmp_path, key="k=3"), predict(model, x))
    assert not list(tmp_path.glob("*.tmp"))


def test_cached_predict_with_features(tmp_path):
    from kdlib import MLP

    torch.manual_seed(0)
    m = MLP((5,))
    x = torch.randn(7, 784)
    a = cached_predict(m, x, folder=tmp_path, return_features=True)
    b = cached_predict(m, x, folder=tmp_path, return_features=True)
    assert isinstance(b, tuple) and len(b) == 2
    torch.testing.assert_close(a[1], b[1])
    torch.testing.assert_close(b[1], m(x, return_features=True)[1].detach())


def test_naive_loader_gives_the_same_numbers_as_load_mnist(mnist):
    loader = naive_mnist_loader(train=False, batch_size=8, shuffle=False)
    x, y = next(iter(loader))
    assert x.shape == (8, 1, 28, 28)
    torch.testing.assert_close(y, mnist.y_test[:8])
    torch.testing.assert_close(x, mnist.x_test[:8], atol=1e-3, rtol=0)  # 0.1307/0.3081 vs exact stats


def test_seconds_per_batch_counts_steps():
    calls = []

    def batches():
        for _ in range(5):
            calls.append(1)
            yield torch.randn(4, 2), torch.randint(0, 2, (4,))

    t = seconds_per_batch(nn.Linear(2, 2), batches(), F.cross_entropy, n_batches=3, warmup=2)
    assert t > 0 and len(calls) == 5
    with pytest.raises(ValueError, match="ran out"):
        seconds_per_batch(nn.Linear(2, 2), batches(), F.cross_entropy, n_batches=4, warmup=2)


def test_heatmap_writes_each_value():
    v = pd.DataFrame([[1.0, 2.0], [3.0, np.nan]], index=pd.Index([0.5, 0.9], name="alpha"), columns=pd.Index([2, 4], name="T"))
    ax = heatmap(v, fmt="{:.1f}")
    assert sorted(t.get_text() for t in ax.texts) == ["1.0", "2.0", "3.0"]
    assert ax.get_xlabel() == "T" and ax.get_ylabel() == "alpha"
    with pytest.raises(ValueError, match="empty"):
        heatmap(pd.DataFrame())
