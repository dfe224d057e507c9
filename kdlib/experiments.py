r"""Fair student comparisons: several training methods, the same initial weights, several seeds.

:func:`train_students` runs them into a tidy table; :func:`summarize` (mean :math:`\pm` std), :func:`paired_ci`,
:func:`compare_arms` and :func:`gap_recovered` read it.
"""

from __future__ import annotations

import copy
import gc
import math
import multiprocessing as mp
import os
import time
from concurrent.futures import ProcessPoolExecutor
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import product

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from .metrics import MINUTES_PER_STEP, accuracy, errors, horizon_metrics
from .stacked import fit_stacked, seeded_students
from .train import History, fit, predict, seed_everything

__all__: list[str] = ["Method", "StudentRuns", "classification_score", "forecast_score", "train_students", "parallel_map", "summarize", "gap_recovered", "paired_differences", "PairedCI", "paired_ci", "compare_arms", "welch_ci", "t_quantile", "epochs_to_target", "seconds_to_target"]


@dataclass
class Method:
    """One way to train a student: its loss, its targets and (optionally) its own inputs.

    Attributes:
        loss: ``loss(output, *targets)``; an ``nn.Module`` loss (e.g. :class:`~kdlib.losses.HintLoss`) is copied
            per run, re-initialised under the run's seed and trained along.
        targets: aligned with the training inputs, e.g. ``(labels, teacher_logits)``.
        inputs: this method's own training inputs (e.g. a labelled subset); ``None``: the shared ones.
        params: hyperparameters, e.g. ``{"T": 4, "alpha": 0.9}``: columns of the results table.
        forward_kwargs: e.g. ``{"return_features": True}`` for feature losses.
        fit_kwargs: per-method overrides of the shared ``fit`` arguments.
    """

    loss: Callable[..., Tensor]
    targets: Tensor | tuple[Tensor, ...]
    inputs: Tensor | tuple[Tensor, ...] | None = None
    params: dict = field(default_factory=dict)
    forward_kwargs: dict = field(default_factory=dict)
    fit_kwargs: dict = field(default_factory=dict)


@dataclass
class StudentRuns:
    """What :func:`train_students` returns.

    ``table``: one row per (seed, method): ``seed, method``, the ``params``, the ``score`` columns, ``best_epoch``
    (0-based) and ``seconds``. ``histories`` and ``models`` (eval mode, CPU) are keyed by ``(method, seed)``.
    """

    table: pd.DataFrame
    histories: dict[tuple[str, int], History]
    models: dict[tuple[str, int], nn.Module]


Score = Callable[[nn.Module], dict[str, float]]


def classification_score(x: Tensor, y: Tensor) -> Score:
    """``score(model) -> {"errors": .., "accuracy": ..}`` on ``(x, y)``, for :func:`train_students`."""
    def score(model: nn.Module) -> dict[str, float]:
        logits = predict(model, x)
        return {"errors": errors(logits, y), "accuracy": accuracy(logits, y)}
    return score


def forecast_score(inputs: Tensor | tuple[Tensor, ...], y: Tensor, horizons: Sequence[int] = (3, 6, 12),
                   mask: Tensor | None = None) -> Score:
    """``score(model) -> {"MAE 15min": .., "MAE 30min": .., "MAE 60min": ..}`` (masked MAE in mph)."""
    def score(model: nn.Module) -> dict[str, float]:
        m = horizon_metrics(predict(model, inputs), y, horizons, mask=mask)
        return {f"MAE {h * MINUTES_PER_STEP}min": m[h]["MAE"] for h in horizons}
    return score


def _reset_parameters(module: nn.Module) -> None:
    for m in module.modules():
        if m is not module and hasattr(m, "reset_parameters"):
            m.reset_parameters()


def _train_one(make_student, name, m, inputs, score, seed, keep_models, fit_kwargs) -> tuple[list, dict, dict]:
    seed_everything(seed)
    model = make_student()  # the seed's initial weights: the same for every method of this seed
    loss, extra = m.loss, []
    if isinstance(loss, nn.Module):
        loss = copy.deepcopy(loss)
        torch.manual_seed(seed)
        _reset_parameters(loss)
        extra = [loss]
    t0 = time.perf_counter()
    history = fit(model, m.inputs if m.inputs is not None else inputs, m.targets, loss,
                  forward_kwargs=m.forward_kwargs or None, extra_modules=extra, seed=seed,
                  **{**fit_kwargs, **m.fit_kwargs})
    return _results(name, m, [seed], [model], [history], time.perf_counter() - t0, score, keep_models)


def _results(name, m, seeds, students, histories, seconds, score, keep_models) -> tuple[list, dict, dict]:
    """The table rows, histories and (if kept) models of one method's runs, keyed by ``(name, seed)``."""
    rows = []
    for seed, model, history in zip(seeds, students, histories):
        model.cpu()
        rows.append({"seed": seed, "method": name, **m.params, **score(model), "best_epoch": history.best_epoch,
                     "seconds": seconds})
    keys = [(name, seed) for seed in seeds]
    return rows, dict(zip(keys, histories)), (dict(zip(keys, students)) if keep_models else {})


_STACKABLE_FIT_KWARGS = {"epochs", "batch_size", "lr", "optimizer", "scheduler", "val_data", "val_metric",
                         "higher_is_better", "restore_best", "device"}  # what kdlib.fit_stacked takes


def _stackable(m: Method, fit_kwargs: dict) -> bool:
    return not (isinstance(m.loss, nn.Module) or m.forward_kwargs or m.fit_kwargs or set(fit_kwargs) - _STACKABLE_FIT_KWARGS)


def _train_stacked(make_student, name, m, inputs, score, seeds, keep_models, fit_kwargs) -> tuple[list, dict, dict]:
    students = seeded_students(make_student, seeds)  # each seed's initial weights, as in _train_one
    t0 = time.perf_counter()
    stacked = fit_stacked(students, m.inputs if m.inputs is not None else inputs, m.targets, m.loss, seeds=seeds,
                          **fit_kwargs)
    return _results(name, m, seeds, students, stacked, (time.perf_counter() - t0) / len(seeds), score, keep_models)


def train_students(
    make_student: Callable[[], nn.Module],
    methods: dict[str, Method],
    inputs: Tensor | tuple[Tensor, ...] | None,
    score: Score,
    seeds: Sequence[int] = (0, 1, 2),
    keep_models: bool = True,
    workers: int = 1,
    stacked: bool = False,
    **fit_kwargs,
) -> StudentRuns:
    """Train one student per (seed, method), every method of a seed from the same initial weights.

    Args:
        make_student: builds a fresh student; called right after ``seed_everything(seed)``, and each run uses
            ``fit(seed=seed)``, so the methods of a seed share initial weights and (for inputs of equal length)
            batch order: the comparison is paired.
        inputs: shared by the methods whose ``inputs`` is ``None``.
        score: ``score(model) -> {column: value}`` after training, e.g. :func:`classification_score`.
        workers: spread the runs over up to this many forked processes (:func:`parallel_map`); same results.
        stacked: train all seeds of a method at once with :func:`kdlib.fit_stacked` where it can (a plain-function
            loss, no per-method ``forward_kwargs``/``fit_kwargs``, shared ``fit_kwargs`` it takes); the same results
            up to rounding, ``seconds`` per seed. Pays off when steps are overhead-bound (a small MLP on a CPU).
        fit_kwargs: passed to :func:`kdlib.fit` for every run (epochs, batch_size, val_data, ...).
    """
    if not methods:
        raise ValueError("methods is empty: give at least one, e.g. {'scratch': Method(F.cross_entropy, y)}")
    if len(seeds) < 1:
        raise ValueError("seeds is empty: give at least one seed, e.g. seeds=(0, 1, 2)")
    if not callable(score):
        raise TypeError(f"score must be a callable model -> dict, e.g. kdlib.classification_score(x_test, y_test); "
                        f"got {type(score).__name__}")
    for name, m in methods.items():
        if m.inputs is None and inputs is None:
            raise ValueError(f"method {name!r} has no inputs of its own and the shared inputs are None")
    seeds = list(seeds)
    together = [name for name, m in methods.items() if stacked and _stackable(m, fit_kwargs)]
    alone = {name: m for name, m in methods.items() if name not in together}
    jobs = [(name, None) for name in together] + [(name, seed) for seed in seeds for name in alone]

    def job(item: tuple[str, int | None]) -> tuple[list, dict, dict]:
        name, seed = item
        if seed is None:
            return _train_stacked(make_student, name, methods[name], inputs, score, seeds, keep_models, fit_kwargs)
        return _train_one(make_student, name, alone[name], inputs, score, seed, keep_models, fit_kwargs)

    rows, histories, models = [], {}, {}
    for r, h, m in parallel_map(job, jobs, max_workers=workers):
        rows += r
        histories.update(h)
        models.update(m)
    order = {(name, seed): i for i, (seed, name) in enumerate(product(seeds, methods))}  # the per-seed path's order
    rows.sort(key=lambda row: order[(row["method"], row["seed"])])
    histories, models = ({key: d[key] for key in sorted(d, key=order.__getitem__)} for d in (histories, models))
    return StudentRuns(pd.DataFrame(rows), histories, models)


_JOB: Callable | None = None  # the function parallel_map's forked workers call


def _run_job(item):
    return _JOB(item)


def parallel_map(fn: Callable, items: Sequence, max_workers: int = 2) -> list:
    """``[fn(item) for item in items]`` over up to ``max_workers`` forked processes (one PyTorch thread each).

    ``fn`` may be a closure (only items and results are pickled); without ``fork`` (Windows) the items run here.
    """
    global _JOB
    if max_workers < 1:
        raise ValueError(f"max_workers must be >= 1, got {max_workers}")
    workers = min(max_workers, os.cpu_count() or 1, len(items))
    if workers <= 1 or "fork" not in mp.get_all_start_methods():
        return [fn(item) for item in items]
    _JOB = fn
    gc.collect()
    gc.freeze()
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("fork"),
                                 initializer=torch.set_num_threads, initargs=(1,)) as pool:
            return list(pool.map(_run_job, items))
    finally:
        gc.unfreeze()
        _JOB = None


def summarize(table: pd.DataFrame, by: str | list[str] = "method", value: str = "errors") -> pd.DataFrame:
    """Columns ``mean, std`` (``ddof=1``) and ``n`` of ``value`` per group, in order of first appearance."""
    missing = {value, *([by] if isinstance(by, str) else by)} - set(table.columns)
    if missing:
        raise KeyError(f"table has no column(s) {sorted(missing)}; it has {list(table.columns)}")
    g = table.groupby(by, sort=False)[value]
    return pd.DataFrame({"mean": g.mean(), "std": g.std(ddof=1), "n": g.count()})


def gap_recovered(teacher: float, scratch: float, distilled: float) -> float:
    r"""Fraction of the teacher-student gap closed by distillation (errors, lower is better).

    .. math:: r = \frac{e_{scratch} - e_{distilled}}{e_{scratch} - e_{teacher}}

    1: as good as the teacher; 0: no gain over scratch; negative: distillation hurt.
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


def t_quantile(p: float, df: int) -> float:
    r"""The ``p`` quantile of Student's t with ``df`` degrees of freedom, e.g. ``t_quantile(0.975, 9)`` = 2.2622.

    Bisection on the CDF :math:`F_\nu(t) = \tfrac12 + \int_0^t \frac{\Gamma((\nu+1)/2)}{\sqrt{\nu\pi}\,\Gamma(\nu/2)}
    (1 + x^2/\nu)^{-(\nu+1)/2}\,dx`, integrated by Simpson's rule (no SciPy).
    """
    if not 0 < p < 1 or df < 1:
        raise ValueError(f"t_quantile needs 0 < p < 1 and df >= 1, got p={p}, df={df}")
    if p < 0.5:
        return -t_quantile(1 - p, df)
    c = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)

    def cdf(t: float, n: int = 4000) -> float:
        xs = np.linspace(0.0, t, n + 1)
        f = c * (1 + xs**2 / df) ** (-(df + 1) / 2)
        return 0.5 + (t / n / 3) * (f[0] + f[-1] + 4 * f[1:-1:2].sum() + 2 * f[2:-1:2].sum())

    lo, hi = 0.0, 1.0
    while cdf(hi) < p:
        lo, hi = hi, hi * 2
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) < p else (lo, mid)
    return (lo + hi) / 2


@dataclass(frozen=True)
class PairedCI:
    """Mean of per-seed paired differences with its confidence interval (see :func:`paired_ci`)."""

    mean: float
    low: float
    high: float
    n: int
    level: float = 0.95
    differences: tuple[float, ...] = field(default=(), repr=False, compare=False)  # per seed, from paired_ci

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    @property
    def verdict(self) -> str:
        """``"gain"`` (the interval lies above 0), ``"loss"`` (below 0) or ``"no difference distinguishable"``."""
        return "gain" if self.low > 0 else "loss" if self.high < 0 else "no difference distinguishable"

    def __str__(self) -> str:
        return f"{self.mean:+.4f} [{self.low:+.4f}, {self.high:+.4f}] ({self.level:.0%} CI, n={self.n})"


def paired_ci(table: pd.DataFrame, baseline: str, method: str, value: str = "errors", level: float = 0.95) -> PairedCI:
    r"""Confidence interval of the mean paired difference ``value[baseline] - value[method]`` over seeds.

    .. math:: \bar d \pm t_{(1+\text{level})/2,\,n-1}\, \frac{s_d}{\sqrt n}

    :math:`d_s`: the per-seed differences (:func:`paired_differences`; positive: ``method`` scored lower, better
    for errors or MAE), :math:`n \ge 2` seeds. Pairing removes the seed-to-seed variation both arms share.
    """
    d = paired_differences(table, baseline, method, value).dropna()
    n = len(d)
    if n < 2:
        raise ValueError(f"paired_ci needs at least 2 paired seeds, got {n}: train more seeds")
    half = t_quantile((1 + level) / 2, n - 1) * float(d.std(ddof=1)) / math.sqrt(n)
    m = float(d.mean())
    return PairedCI(m, m - half, m + half, n, level, tuple(d.tolist()))


def compare_arms(table: pd.DataFrame, baseline: str, method: str, columns: Sequence[str],
                 level: float = 0.95) -> pd.DataFrame:
    """Two arms over the same seeds, column by column: each arm's mean and std, and their paired difference.

    One row per entry of ``columns``: ``<baseline>``, ``<baseline> std``, ``<method>``, ``<method> std``, then
    :func:`paired_ci` of ``baseline - method``: ``difference``, ``CI low``, ``CI high``, ``n``, ``difference %``
    (of the baseline's mean), ``verdict`` and ``ci`` (the :class:`PairedCI`).
    """
    rows = []
    for c in columns:
        s, ci = summarize(table, "method", c), paired_ci(table, baseline, method, value=c, level=level)
        rows.append({"column": c, baseline: s.loc[baseline, "mean"], f"{baseline} std": s.loc[baseline, "std"],
                     method: s.loc[method, "mean"], f"{method} std": s.loc[method, "std"], "difference": ci.mean,
                     "CI low": ci.low, "CI high": ci.high, "n": ci.n,
                     "difference %": 100 * ci.mean / s.loc[baseline, "mean"], "verdict": ci.verdict, "ci": ci})
    return pd.DataFrame(rows).set_index("column")


def welch_ci(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> PairedCI:
    r"""Welch's confidence interval of ``mean(a) - mean(b)`` for two *independent* groups (e.g. two architectures).

    .. math::
        \bar a - \bar b \pm t_{(1+\text{level})/2,\,\nu}\, \sqrt{s_a^2/n_a + s_b^2/n_b},\qquad
        \nu = \frac{(s_a^2/n_a + s_b^2/n_b)^2}{\frac{(s_a^2/n_a)^2}{n_a - 1} + \frac{(s_b^2/n_b)^2}{n_b - 1}}

    Sample variances with ``ddof=1``; at least two values per group. Its ``n`` is the smaller group's size.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if min(len(a), len(b)) < 2:
        raise ValueError(f"welch_ci needs at least 2 values per group, got {len(a)} and {len(b)}")
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    m = float(a.mean() - b.mean())
    if va + vb == 0:
        return PairedCI(m, m, m, min(len(a), len(b)), level)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = t_quantile((1 + level) / 2, max(df, 1.0)) * math.sqrt(va + vb)
    return PairedCI(m, m - half, m + half, min(len(a), len(b)), level)


def epochs_to_target(scores: Sequence[float], target: float, higher_is_better: bool) -> int | None:
    r"""The first epoch (1-based) whose score (e.g. ``History.val_score``) reaches ``target``; ``None``: censored.

    :math:`e^* = \min\{e : s_e \ge \text{target}\}` when ``higher_is_better``, with :math:`\le` otherwise.
    """
    if len(scores) == 0:
        raise ValueError("scores is empty: train with val_data and val_metric so that History.val_score is filled")
    for epoch, s in enumerate(scores, start=1):
        if (s >= target) if higher_is_better else (s <= target):
            return epoch
    return None


def seconds_to_target(history, target: float, higher_is_better: bool) -> float | None:
    r"""Wall-clock seconds until ``history`` (a :class:`kdlib.History`) reaches ``target``, or ``None``.

    :math:`t^* = \sum_{e \le e^*} \text{epoch\_seconds}_e` (:func:`epochs_to_target`); epoch times include validation.
    """
    if len(history.epoch_seconds) != len(history.val_score):
        raise ValueError(f"{len(history.val_score)} validation scores for {len(history.epoch_seconds)} epoch times: "
                         "train with val_data and val_metric so that every epoch is scored")
    epoch = epochs_to_target(history.val_score, target, higher_is_better)
    return None if epoch is None else float(sum(history.epoch_seconds[:epoch]))
