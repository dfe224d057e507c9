"""One training loop, :func:`fit`, over in-memory tensors (first dimension: samples); plus :func:`predict`.

Cached teacher outputs are one more target, ``fit(student, x, (y, teacher_logits), distillation_loss)``; only with
per-batch augmentation must the teacher run in the loop (``fit(teacher=..., augment=...)``).
"""

from __future__ import annotations

import copy
import math
import os
import random
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

__all__: list[str] = ["seed_everything", "cosine_adam", "default_device", "History", "predict", "fit"]

Tensors = Tensor | Sequence[Tensor]
OptimizerFactory = Callable[..., torch.optim.Optimizer]  # params -> optimiser
SchedulerFactory = Callable[[torch.optim.Optimizer], torch.optim.lr_scheduler.LRScheduler]  # optimiser -> schedule


def seed_everything(seed: int, deterministic: bool = False) -> torch.Generator:
    """Seed ``random``, NumPy and PyTorch (CPU and CUDA); returns a ``torch.Generator`` seeded likewise.

    ``deterministic=True`` also asks for deterministic kernels (slower on CUDA; on the CPU, runs with
    the same thread count already repeat).
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__} {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds CUDA
    os.environ["PYTHONHASHSEED"] = str(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    return torch.Generator().manual_seed(seed)


def cosine_adam(epochs: int, batch_size: int = 128, lr: float = 3e-3) -> dict:
    r"""``fit`` keyword arguments for Adam whose learning rate in epoch :math:`e` (0-based) is
    :math:`\eta_e = \frac{\eta}{2}\left(1 + \cos\frac{\pi e}{E}\right)`: ``fit(model, x, y, loss, **cosine_adam(40))``.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    return {
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "scheduler": lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs),
    }


def default_device() -> torch.device:
    """CUDA when available (Colab, a GPU laptop), else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class History:
    """What :func:`fit` measured, one entry per epoch."""

    train_loss: list[float] = field(default_factory=list)
    val_score: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    best_epoch: int | None = None  # 0-based; set when validation data was given

    @property
    def best_score(self) -> float | None:
        return None if self.best_epoch is None else self.val_score[self.best_epoch]


def _as_tuple(t: Tensors) -> tuple[Tensor, ...]:
    return (t,) if isinstance(t, Tensor) else tuple(t)


def _to(ts: tuple[Tensor, ...], device: torch.device) -> tuple[Tensor, ...]:
    return tuple(t.to(device) for t in ts)


def _num_samples(xs: tuple[Tensor, ...], ys: tuple[Tensor, ...], what: str) -> int:
    if not xs:
        raise ValueError(f"the {what} inputs are empty: pass a tensor or a non-empty tuple of tensors, not ()")
    n = xs[0].shape[0]
    for t in (*xs, *ys):
        if t.shape[0] != n:
            raise ValueError(f"all {what} inputs and targets need the same first (sample) dimension: {n} vs {t.shape[0]}")
    if n == 0:
        raise ValueError(f"the {what} data has 0 samples: check how it was split or filtered")
    return n


@torch.no_grad()
def predict(
    model: nn.Module,
    inputs: Tensors,
    batch_size: int = 1024,
    device: torch.device | str | None = None,
    **forward_kwargs,
) -> Tensor | tuple[Tensor, ...]:
    """Model outputs for all samples, in eval mode, without gradients, on the CPU.

    ``return_features=True`` gives ``(outputs, features)``; zero samples give empty outputs (one empty batch).
    """
    xs = _as_tuple(inputs)
    if not xs:
        raise ValueError("predict needs inputs: a tensor or a non-empty tuple of tensors, not ()")
    n = xs[0].shape[0]
    if device is None:  # the model's device; a model without parameters (a rule) runs on the CPU
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    device = torch.device(device)
    was_training = model.training
    model.eval()
    chunks: list = []
    for i in range(0, max(n, 1), batch_size):  # zero samples: one empty batch
        try:
            out = model(*_to(tuple(x[i : i + batch_size] for x in xs), device), **forward_kwargs)
        except Exception as e:
            if n:
                raise
            raise ValueError("predict got 0 samples and the model cannot run on an empty batch") from e
        chunks.append(tuple(o.cpu() for o in _as_tuple(out)))
    model.train(was_training)
    outs = tuple(torch.cat(parts) for parts in zip(*chunks))
    return outs[0] if len(outs) == 1 else outs


def _check_fit_args(inputs, targets, epochs, batch_size, val_data, val_metric, higher_is_better):
    """Checks shared by :func:`fit` and :func:`kdlib.fit_stacked`; returns ``(xs, ys, n, vx, vy, higher_is_better)``."""
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be >= 1, got {epochs}, {batch_size}")
    xs, ys = _as_tuple(inputs), _as_tuple(targets)
    n = _num_samples(xs, ys, "training")
    vx = vy = None
    if val_data is not None:
        if val_metric is None:
            raise ValueError("val_data needs val_metric, e.g. kdlib.metrics.accuracy or kdlib.metrics.masked_mae")
        if isinstance(val_data, Tensor) or len(val_data) != 2:
            raise ValueError("val_data must be a pair (val_inputs, val_targets)")
        vx, vy = _as_tuple(val_data[0]), _as_tuple(val_data[1])
        _num_samples(vx, vy, "validation")
        declared = getattr(val_metric, "higher_is_better", None)
        if declared is not None and higher_is_better not in (None, declared):
            raise ValueError(f"higher_is_better={higher_is_better} contradicts val_metric.higher_is_better={declared}")
        higher_is_better = declared if higher_is_better is None else higher_is_better
        if higher_is_better is None:
            raise ValueError("val_metric has no higher_is_better attribute: pass higher_is_better=True or False")
    return xs, ys, n, vx, vy, higher_is_better


def _check_loss(value: float, epoch: int, batch: int, seed: int | None = None) -> None:
    if not math.isfinite(value):
        which = "" if seed is None else f" for seed {seed}"
        raise FloatingPointError(f"training loss {value}{which} in epoch {epoch}, batch {batch}: look for NaN/inf in the "
                                 "inputs or targets, log(0) or /0 in loss_fn, or a too high learning rate")


def _is_best(score: float, best: float | None, higher_is_better: bool, where: str) -> bool:
    """Whether a validation score beats ``best``; NaN never does (with a warning)."""
    if math.isnan(score):
        warnings.warn(f"{where}: the validation score is NaN, so never the best", stacklevel=3)
        return False
    return best is None or (score > best if higher_is_better else score < best)


def fit(
    model: nn.Module,
    inputs: Tensors,
    targets: Tensors,
    loss_fn: Callable[..., Tensor],
    *,
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 1e-3,
    optimizer: OptimizerFactory | None = None,
    scheduler: SchedulerFactory | None = None,
    val_data: tuple[Tensors, Tensors] | None = None,
    val_metric: Callable[..., float] | None = None,
    higher_is_better: bool | None = None,
    restore_best: bool = True,
    forward_kwargs: dict | None = None,
    extra_modules: Sequence[nn.Module] = (),
    teacher: nn.Module | None = None,
    augment: Callable[[tuple[Tensor, ...]], tuple[Tensor, ...]] | None = None,
    seed: int | None = 0,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> History:
    """Train ``model`` in place (left in eval mode) by mini-batch gradient descent; returns its :class:`History`.

    Args:
        model, inputs, targets: ``model(*batch_inputs, **forward_kwargs)``; tensors or tuples, same sample count.
        loss_fn: ``loss_fn(output, *batch_targets)`` returns the scalar batch loss.
        epochs, batch_size, lr: the usual; the last batch may be smaller.
        optimizer: factory ``optimizer(params)``; default ``Adam(params, lr=lr)``. For weight decay pass e.g.
            ``lambda p: torch.optim.AdamW(p, lr=1e-3, weight_decay=1e-2)``.
        scheduler: factory ``scheduler(optimizer)``, stepped once per epoch (see :func:`cosine_adam`).
        val_data, val_metric: ``(val_inputs, val_targets)``, scored after each epoch as
            ``val_metric(predict(model, val_inputs), *val_targets)``, e.g. :func:`kdlib.accuracy`; NaN is never best.
        higher_is_better: direction of ``val_metric``; default its ``higher_is_better`` attribute (every kdlib
            metric has one), required without one, an error if it contradicts it.
        restore_best: with validation, load the best epoch's weights at the end.
        forward_kwargs: e.g. ``{"return_features": True}`` (then ``output`` is ``(logits, features)``).
        extra_modules: trained along (e.g. a :class:`~kdlib.losses.HintLoss`).
        teacher, augment: batch inputs go through ``augment``, and the teacher's output on them (no grad, eval mode)
            is appended to the batch targets. Without ``augment`` cache the teacher instead.
        seed: seeds the shuffling order (initialise the model's weights yourself).
        device: default :func:`default_device`.
        progress: a ``tqdm.auto`` bar over epochs.
    Raises:
        ValueError: bad input, before any training.
        FloatingPointError: a batch's loss is NaN or inf (re-initialise the model after fixing the cause).
    """
    xs, ys, n, vx, vy, higher_is_better = _check_fit_args(inputs, targets, epochs, batch_size, val_data, val_metric,
                                                          higher_is_better)
    device = torch.device(device) if device is not None else default_device()
    model.to(device)
    for m in extra_modules:
        m.to(device)
    if teacher is not None:
        teacher.to(device).eval()
    xs, ys = _to(xs, device), _to(ys, device)
    params = [p for m in (model, *extra_modules) for p in m.parameters() if p.requires_grad]
    opt = optimizer(params) if optimizer is not None else torch.optim.Adam(params, lr=lr)
    sched = scheduler(opt) if scheduler is not None else None
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    fkw = forward_kwargs or {}

    history = History()
    best_state, best = None, None
    epoch_iter = range(epochs)
    if progress:
        from tqdm.auto import tqdm

        epoch_iter = tqdm(epoch_iter, desc="epochs", leave=False)
    for epoch in epoch_iter:
        t0 = time.perf_counter()
        model.train()
        for m in extra_modules:
            m.train()
        perm = torch.randperm(n, generator=gen).to(device)
        total, count = 0.0, 0
        for i in range(0, n, batch_size):
            idx = perm[i : i + batch_size]  # gather one batch at a time: no shuffled copy of the data
            bx = tuple(x.index_select(0, idx) for x in xs)  # = x[idx], about twice as fast on a CPU
            by = tuple(y.index_select(0, idx) for y in ys)
            if augment is not None:
                bx = tuple(augment(bx))
            if teacher is not None:
                with torch.no_grad():
                    by = (*by, teacher(*bx))
            loss = loss_fn(model(*bx, **fkw), *by)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            value = loss.item()  # the one sync per batch, needed for the running total anyway
            _check_loss(value, epoch, i // batch_size)
            total += value * bx[0].shape[0]
            count += bx[0].shape[0]
        history.train_loss.append(total / count)
        if sched is not None:
            sched.step()
        if val_data is not None:
            score = float(val_metric(predict(model, vx, device=device), *vy))
            history.val_score.append(score)
            if _is_best(score, best, higher_is_better, f"epoch {epoch}"):
                best, history.best_epoch = score, epoch
                if restore_best:
                    best_state = copy.deepcopy(model.state_dict())
        history.epoch_seconds.append(time.perf_counter() - t0)
        if progress:
            post = {"loss": f"{history.train_loss[-1]:.4f}"}
            if history.val_score:
                post["val"] = f"{history.val_score[-1]:.4f}"
            epoch_iter.set_postfix(post)
    if val_data is not None and history.best_epoch is None:
        warnings.warn("every validation score is NaN: no best epoch; the last epoch's weights are kept", stacklevel=2)
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return history
