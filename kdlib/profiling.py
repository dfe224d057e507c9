"""What a model costs: parameters, bytes on disk, FLOPs per sample, CPU latency and training-step time.

Timings (CPU, current ``torch.get_num_threads()``) depend on the machine: report them with it.
"""

from __future__ import annotations

import io
import statistics
import time
from collections.abc import Callable, Iterable

import pandas as pd
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

from .files import data_dir

__all__: list[str] = ["count_parameters", "size_on_disk", "flops_per_sample", "latency", "training_step_seconds", "break_even_inferences", "profile", "compare", "naive_mnist_loader", "seconds_per_batch"]

InputFn = Callable[[int], tuple[Tensor, ...]]  # batch size -> model inputs


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (buffers such as BatchNorm statistics not included)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def size_on_disk(model: nn.Module) -> int:
    """Bytes of the model's ``state_dict`` as ``torch.save`` writes it."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getbuffer().nbytes


@torch.no_grad()
def flops_per_sample(model: nn.Module, inputs: tuple[Tensor, ...]) -> float:
    """Forward FLOPs per sample of matmuls and convolutions (not element-wise ops), multiply-add = 2 FLOPs."""
    was_training = model.training
    model.eval()
    with FlopCounterMode(display=False) as counter:
        model(*inputs)
    model.train(was_training)
    return counter.get_total_flops() / inputs[0].shape[0]


@torch.no_grad()
def latency(model: nn.Module, inputs: tuple[Tensor, ...], repeats: int = 50, warmup: int = 5) -> float:
    """Median seconds of one forward pass on ``inputs`` after ``warmup`` passes (CPU, eval mode, no grad)."""
    was_training = model.training
    model.eval()
    for _ in range(warmup):
        model(*inputs)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model(*inputs)
        times.append(time.perf_counter() - t0)
    model.train(was_training)
    return statistics.median(times)


def _adam_step(model: nn.Module, loss_fn: Callable[..., Tensor], lr: float) -> Callable[[tuple, tuple], None]:
    """``step(inputs, targets)``: one Adam step of ``model`` (in train mode) on a batch, as :func:`kdlib.fit` has it."""
    model.train()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)

    def step(inputs: tuple[Tensor, ...], targets: tuple[Tensor, ...]) -> None:
        loss = loss_fn(model(*inputs), *targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def training_step_seconds(
    model: nn.Module,
    inputs: tuple[Tensor, ...],
    targets: tuple[Tensor, ...],
    loss_fn: Callable[..., Tensor],
    lr: float = 1e-3,
    augment: Callable[[tuple[Tensor, ...]], tuple[Tensor, ...]] | None = None,
    steps: int = 20,
    warmup: int = 3,
) -> float:
    """Median seconds of one Adam step (augment, forward, loss, backward, step) on one batch, as :func:`kdlib.fit`
    passes it (``loss_fn(model(*inputs), *targets)``). Trains ``model`` in place: pass a copy if its weights matter."""
    if steps < 1 or warmup < 0:
        raise ValueError(f"steps must be >= 1 and warmup >= 0, got steps={steps}, warmup={warmup}")
    step = _adam_step(model, loss_fn, lr)
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        step(tuple(augment(inputs)) if augment is not None else inputs, targets)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    model.eval()
    return statistics.median(times)


def break_even_inferences(
    extra_training_seconds: float, teacher_seconds: float, student_seconds: float
) -> float:
    r"""Inferences after which serving the student instead of the teacher has paid for distillation:

    .. math:: N^* = \frac{C}{t_T - t_S}

    where :math:`N t_T = C + N t_S`; :math:`C` = ``extra_training_seconds`` (teacher outputs and student training,
    plus the teacher's if trained only to be distilled); :math:`t_T`, :math:`t_S` = ``teacher_seconds``,
    ``student_seconds`` per inference.
    """
    if extra_training_seconds < 0:
        raise ValueError(f"extra_training_seconds must be >= 0, got {extra_training_seconds}")
    if teacher_seconds <= 0 or student_seconds <= 0:
        raise ValueError(f"seconds per inference must be > 0, got teacher {teacher_seconds}, student {student_seconds}")
    if student_seconds >= teacher_seconds:
        raise ValueError(
            f"the student ({student_seconds:.3g} s) is not faster than the teacher ({teacher_seconds:.3g} s) "
            "per inference, so distillation never pays back in inference time; compare at the batch size you serve"
        )
    return extra_training_seconds / (teacher_seconds - student_seconds)


def profile(model: nn.Module, make_inputs: InputFn, batch_sizes: tuple[int, ...] = (1, 64), repeats: int = 50) -> dict:
    """Parameters, size, FLOPs per sample and latency at each batch size as one dict; ``make_inputs(batch_size)``
    returns the model's positional inputs. The model is moved to the CPU (not copied)."""
    model = model.cpu()
    row = {
        "params": count_parameters(model),
        "size_kB": size_on_disk(model) / 1024,
        "MFLOPs/sample": flops_per_sample(model, make_inputs(max(batch_sizes))) / 1e6,
    }
    for b in batch_sizes:
        lat = latency(model, make_inputs(b), repeats=repeats)
        row[f"latency_ms@{b}"] = lat * 1e3
        row[f"samples/s@{b}"] = b / lat
    return row


def compare(models: dict[str, tuple[nn.Module, InputFn]], **kwargs) -> pd.DataFrame:
    """One :func:`profile` row per named model: ``compare({"teacher": (cnn, inputs), "student": (mlp, inputs)})``."""
    return pd.DataFrame({name: profile(m, fn, **kwargs) for name, (m, fn) in models.items()}).T


def naive_mnist_loader(
    train: bool = True, batch_size: int = 64, shuffle: bool = True, num_workers: int = 0, seed: int = 0
) -> DataLoader:
    """A ``DataLoader`` over torchvision MNIST (from :func:`kdlib.data_dir`, never downloaded) with per-sample PIL
    ``ToTensor`` + ``Normalize``; 0.1307 / 0.3081 are :func:`kdlib.load_mnist`'s statistics, so both agree."""
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


def seconds_per_batch(
    model: nn.Module,
    batches: Iterable[tuple[Tensor, Tensor]],
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    n_batches: int = 50,
    lr: float = 1e-3,
    warmup: int = 2,
) -> float:
    """Mean wall seconds per training step (fetch the batch, forward, backward, Adam step) over ``n_batches`` steps
    after ``warmup`` untimed ones; ``ValueError`` if ``batches`` runs out first."""
    if n_batches < 1:
        raise ValueError(f"n_batches must be >= 1, got {n_batches}")
    train_step, it = _adam_step(model, loss_fn, lr), iter(batches)

    def step() -> None:
        try:
            x, y = next(it)
        except StopIteration:
            raise ValueError(f"batches ran out before warmup + n_batches = {warmup + n_batches} steps") from None
        train_step((x,), (y,))

    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(n_batches):
        step()
    return (time.perf_counter() - t0) / n_batches
