r"""Fair student comparisons: several training methods, the same initial weights, several seeds.

For each seed, :func:`train_students` seeds everything, builds the student **once**,
copies its initial ``state_dict`` and trains one copy per :class:`Method` with the same
optimiser, epochs and batch size (``fit_kwargs``), so the methods differ only in their
loss and targets. The result is a tidy table, one row per (seed, method), with the test
errors out of ``len(y_test)`` and the accuracy; :func:`summarize` turns it into
mean :math:`\pm` sample standard deviation (``ddof = 1``) per method, and
:func:`gap_recovered` says how much of the teacher-student gap a method closes.
"""

from __future__ import annotations

import copy
import gc
import multiprocessing as mp
import os
import time
from concurrent.futures import ProcessPoolExecutor
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pandas as pd
import torch
from torch import Tensor, nn

from .metrics import accuracy, errors
from .seed import seed_everything
from .train import fit, predict


@dataclass
class Method:
    """One way to train a student: its loss, its targets and (optionally) its own inputs.

    Attributes:
        loss: ``loss(output, *targets)`` (see :func:`kdlib.fit`). A loss with parameters
            (an ``nn.Module``, e.g. one holding a :class:`~kdlib.losses.HintLoss`
            regressor) is deep-copied for each run, re-initialised under the run's seed
            and trained along with the student.
        targets: tensor or tuple of tensors aligned with the training inputs, e.g.
            ``(labels, teacher_logits)``.
        inputs: this method's training inputs; ``None`` uses the shared ``inputs`` of
            :func:`train_students` (give them when a method trains on another set,
            e.g. a labeled subset).
        forward_kwargs: e.g. ``{"return_features": True}`` for feature (hint) losses.
        fit_kwargs: per-method overrides of the shared ``fit`` arguments (use sparingly:
            a fair comparison keeps them equal).
    """

    loss: Callable[..., Tensor]
    targets: Tensor | tuple[Tensor, ...]
    inputs: Tensor | tuple[Tensor, ...] | None = None
    forward_kwargs: dict = field(default_factory=dict)
    fit_kwargs: dict = field(default_factory=dict)


@dataclass
class StudentRuns:
    """What :func:`train_students` returns: the tidy ``table`` and the trained ``models``.

    ``table`` columns: ``seed, method, errors, accuracy, seconds``; ``models`` maps
    ``(method, seed)`` to the trained student (eval mode, on the CPU).
    """

    table: pd.DataFrame
    models: dict[tuple[str, int], nn.Module]


def _reset_parameters(module: nn.Module) -> None:
    for m in module.modules():
        if m is not module and hasattr(m, "reset_parameters"):
            m.reset_parameters()


def train_students(
    make_student: Callable[[], nn.Module],
    methods: dict[str, Method],
    inputs: Tensor | tuple[Tensor, ...] | None,
    x_test: Tensor,
    y_test: Tensor,
    seeds: Sequence[int] = (0, 1, 2),
    keep_models: bool = True,
    **fit_kwargs,
) -> StudentRuns:
    """Train one student per (seed, method) from the same initial weights per seed.

    Args:
        make_student: builds a fresh, untrained student (called once per seed, right
            after ``seed_everything(seed)``).
        methods: name -> :class:`Method`; every method of a seed starts from the same
            initial ``state_dict`` and sees the mini-batches in the same order
            (``fit(seed=seed)``) when its inputs have the same length.
        inputs: training inputs shared by methods whose ``inputs`` is ``None``.
        x_test, y_test: the test set scored after training (errors and accuracy).
        seeds: at least one seed; use three or more to report mean +/- std.
        keep_models: keep the trained students in ``StudentRuns.models``.
        fit_kwargs: passed to :func:`kdlib.fit` for every run (epochs, batch_size, lr, ...);
            ``progress`` defaults to False.
    """
    if not methods:
        raise ValueError("methods is empty: give at least one, e.g. {'scratch': Method(F.cross_entropy, y)}")
    if len(seeds) < 1:
        raise ValueError("seeds is empty: give at least one seed, e.g. seeds=(0, 1, 2)")
    for name, m in methods.items():
        if m.inputs is None and inputs is None:
            raise ValueError(f"method {name!r} has no inputs of its own and the shared inputs are None")
    fit_kwargs.setdefault("progress", False)
    rows, models = [], {}
    for seed in seeds:
        seed_everything(seed)
        student = make_student()
        init = copy.deepcopy(student.state_dict())
        for name, m in methods.items():
            model = copy.deepcopy(student)
            model.load_state_dict(init)
            loss = m.loss
            extra: list[nn.Module] = []
            if isinstance(loss, nn.Module):
                loss = copy.deepcopy(loss)
                torch.manual_seed(seed)
                _reset_parameters(loss)
                extra = [loss]
            kwargs = {**fit_kwargs, **m.fit_kwargs}
            t0 = time.perf_counter()
            fit(
                model,
                m.inputs if m.inputs is not None else inputs,
                m.targets,
                loss,
                forward_kwargs=m.forward_kwargs or None,
                extra_modules=extra,
                seed=seed,
                **kwargs,
            )
            seconds = time.perf_counter() - t0
            logits = predict(model.cpu(), x_test)
            rows.append(
                {
                    "seed": seed,
                    "method": name,
                    "errors": errors(logits, y_test),
                    "accuracy": accuracy(logits, y_test),
                    "seconds": seconds,
                }
            )
            if keep_models:
                models[(name, seed)] = model
    return StudentRuns(pd.DataFrame(rows), models)


def parallel_map(fn: Callable, items: Sequence, max_workers: int = 2) -> list:
    """``[fn(item) for item in items]``, spread over up to ``max_workers`` forked processes.

    Each worker is a fork of the calling process, so ``fn`` may use the notebook's data
    and functions without pickling them; the results come back in order. Before forking,
    the garbage collector's objects are frozen (:func:`gc.freeze`), so the children do not
    copy the parent's Python objects just by scanning them, which keeps the workers'
    memory mostly shared with the parent. Where ``fork`` is unavailable (Windows) or one
    worker is asked for, the items run one after the other in this process.
    Use one PyTorch thread per worker (``torch.set_num_threads(1)``) on a small machine.
    """
    if max_workers < 1:
        raise ValueError(f"max_workers must be >= 1, got {max_workers}")
    workers = min(max_workers, os.cpu_count() or 1, len(items))
    if workers <= 1 or "fork" not in mp.get_all_start_methods():
        return [fn(item) for item in items]
    gc.collect()
    gc.freeze()
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("fork")) as pool:
            return list(pool.map(fn, items))
    finally:
        gc.unfreeze()


def summarize(table: pd.DataFrame, by: str | list[str] = "method", value: str = "errors") -> pd.DataFrame:
    """Mean, sample standard deviation (``ddof=1``) and count of ``value`` per group.

    Keeps the groups in order of first appearance. Columns: ``mean, std, n``.
    """
    missing = {value, *([by] if isinstance(by, str) else by)} - set(table.columns)
    if missing:
        raise KeyError(f"table has no column(s) {sorted(missing)}; it has {list(table.columns)}")
    g = table.groupby(by, sort=False)[value]
    return pd.DataFrame({"mean": g.mean(), "std": g.std(ddof=1), "n": g.count()})


def gap_recovered(teacher: float, scratch: float, distilled: float) -> float:
    r"""Fraction of the teacher-student gap closed by distillation (errors, lower is better).

    .. math:: r = \frac{e_{scratch} - e_{distilled}}{e_{scratch} - e_{teacher}}

    1 means the distilled student matches the teacher, 0 means no gain over training
    from scratch, negative means distillation hurt.
    """
    if scratch == teacher:
        raise ValueError("scratch and teacher errors are equal: there is no gap to recover")
    return (scratch - distilled) / (scratch - teacher)


def paired_differences(table: pd.DataFrame, baseline: str, method: str, value: str = "errors") -> pd.Series:
    """Per-seed ``value[baseline] - value[method]`` (positive: ``method`` made fewer errors)."""
    wide = table.pivot(index="seed", columns="method", values=value)
    for name in (baseline, method):
        if name not in wide.columns:
            raise KeyError(f"method {name!r} not in the table; it has {list(wide.columns)}")
    return wide[baseline] - wide[method]


def cosine_adam(epochs: int, batch_size: int = 128, lr: float = 3e-3) -> dict:
    r"""``fit`` keyword arguments for Adam with a cosine learning-rate decay to 0 over ``epochs``.

    The learning rate in epoch :math:`e` (0-based) is
    :math:`\eta_e = \frac{\eta}{2}\left(1 + \cos\frac{\pi e}{E}\right)`. Use as
    ``fit(model, x, y, loss, **cosine_adam(40))`` or ``train_students(..., **cosine_adam(40))``.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    return {
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "scheduler": lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs),
    }


def epochs_to_target(scores: Sequence[float], target: float, higher_is_better: bool) -> int | None:
    r"""The first epoch (1-based) whose validation score reaches ``target``, or ``None``.

    Reaching means :math:`s_e \ge` ``target`` when ``higher_is_better`` (accuracy) and
    :math:`s_e \le` ``target`` otherwise (MAE):
    :math:`e^* = \min\{e : s_e \text{ reaches the target}\}`. ``None`` says the run never
    reached it within its budget (a censored run: its time to target is *more* than the
    budget, not unknown). Typical input: ``History.val_score`` of :func:`kdlib.fit`.
    """
    if len(scores) == 0:
        raise ValueError("scores is empty: train with val_data and val_metric so that History.val_score is filled")
    for epoch, s in enumerate(scores, start=1):
        if (s >= target) if higher_is_better else (s <= target):
            return epoch
    return None


def seconds_to_target(history, target: float, higher_is_better: bool) -> float | None:
    r"""Wall-clock seconds until ``history`` (a :class:`kdlib.History`) reaches ``target``.

    :math:`t^* = \sum_{e \le e^*} \text{epoch\_seconds}_e` with :math:`e^*` from
    :func:`epochs_to_target`; ``None`` if the target was never reached. The epoch times of
    :func:`kdlib.fit` include its per-epoch validation pass, so compare runs validated on
    the same data.
    """
    if len(history.epoch_seconds) != len(history.val_score):
        raise ValueError(f"{len(history.val_score)} validation scores for {len(history.epoch_seconds)} epoch times: "
                         "train with val_data and val_metric so that every epoch is scored")
    epoch = epochs_to_target(history.val_score, target, higher_is_better)
    return None if epoch is None else float(sum(history.epoch_seconds[:epoch]))
