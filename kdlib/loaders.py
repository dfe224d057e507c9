"""The per-sample image pipeline of many tutorials, kept to measure what it costs.

:func:`naive_mnist_loader` is the usual ``torchvision.datasets.MNIST`` with
``transforms.ToTensor()`` and ``transforms.Normalize`` in a ``DataLoader``: every
sample becomes a PIL image, then a tensor, then is normalised, one at a time, and the
batch is collated in Python. :func:`seconds_per_batch` times training steps fed by any
iterable of ``(x, y)`` batches, so the same model and optimiser can be timed on that
loader and on in-memory tensors.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from .data import data_dir


def naive_mnist_loader(
    train: bool = True, batch_size: int = 64, shuffle: bool = True, num_workers: int = 0, seed: int = 0
) -> DataLoader:
    """A ``DataLoader`` over torchvision MNIST with per-sample PIL ``ToTensor`` + ``Normalize``.

    Reads the raw files from :func:`kdlib.data_dir` (never downloads). The normalisation
    constants 0.1307 / 0.3081 are the training-pixel mean / std that
    :func:`kdlib.load_mnist` computes, so both pipelines feed the model the same numbers.
    """
    from torchvision import datasets, transforms

    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    try:
        ds = datasets.MNIST(str(data_dir()), train=train, download=False, transform=tf)
    except RuntimeError as exc:
        raise FileNotFoundError(
            f"MNIST not found under {data_dir()}/MNIST/raw; run kdlib.load_mnist() once online "
            f"or set KDLIB_DATA to a folder that holds it ({exc})"
        ) from exc
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers, generator=gen)


def in_memory_batches(x: Tensor, y: Tensor, batch_size: int = 64, seed: int = 0) -> Iterable[tuple[Tensor, Tensor]]:
    """Shuffled mini-batches sliced from in-memory tensors, as :func:`kdlib.fit` makes them."""
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))
    x, y = x[perm], y[perm]
    for i in range(0, x.shape[0], batch_size):
        yield x[i : i + batch_size], y[i : i + batch_size]


def seconds_per_batch(
    model: nn.Module,
    batches: Iterable[tuple[Tensor, Tensor]],
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    n_batches: int = 50,
    lr: float = 1e-3,
    warmup: int = 2,
) -> float:
    """Mean wall seconds per training step (fetch the batch + forward + backward + Adam step).

    Runs ``warmup`` untimed steps, then times the next ``n_batches`` steps together.
    Raises ``ValueError`` if ``batches`` runs out first.
    """
    if n_batches < 1:
        raise ValueError(f"n_batches must be >= 1, got {n_batches}")
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    it = iter(batches)

    def step() -> None:
        try:
            x, y = next(it)
        except StopIteration:
            raise ValueError(f"batches ran out before warmup + n_batches = {warmup + n_batches} steps") from None
        loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(n_batches):
        step()
    return (time.perf_counter() - t0) / n_batches
