r"""Train K seeds of one small model at once: stacked parameters, one batched step per batch.

A small student on a CPU is bound by per-step overhead, not arithmetic: a 784-30-30-10 MLP
at batch 64 spends most of a step in Python, PyTorch's dispatcher, autograd's bookkeeping
and the optimiser's loop over tensors, few of them in its 25k multiply-adds per sample.
``K`` seeds trained one after the other pay that overhead ``K`` times. :func:`fit_stacked`
stacks the ``K`` copies' parameters along a new leading (seed) dimension and runs them as
one model (:func:`torch.func.functional_call` under :func:`torch.vmap`, so each ``Linear``
becomes one batched matmul): one forward, one backward and one optimiser step per batch
for all copies, so the overhead is paid about once.

The copies do not interact. Copy ``k`` starts from ``models[k]``'s weights (make them with
:func:`seeded_students`, as :func:`kdlib.train_students` does), walks its own batch order
(``fit(seed=seeds[k])``'s: ``torch.randperm(n, generator=torch.Generator().manual_seed(seed))``
each epoch, in contiguous batches), and the loss is the sum of the per-copy mean losses,
so copy ``k``'s gradient is its own loss's gradient. Adam, AdamW and SGD update every
element on its own, so one optimiser over the stacked tensors acts as ``K`` optimisers, and
a per-epoch scheduler (:func:`kdlib.cosine_adam`) schedules them all alike. Each copy has
its own validation scores, best epoch and best-weights restore. The trained weights are
copied back into ``models``, so the rest of the book sees ordinary modules.

The result equals ``K`` separate :func:`kdlib.fit` runs up to float rounding (a batched
matmul sums in another order than ``K`` single ones); with dropout each copy draws its own
masks, not ``fit``'s. Models must run under ``vmap`` (the book's MLP and STID students do).
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Callable, Sequence
from itertools import chain

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state

from .train import History, Tensors, _as_tuple, _num_samples, default_device, seed_everything

__all__: list[str] = ["seeded_students", "fit_stacked"]

Stack = dict[str, Tensor]  # parameter or buffer name -> tensor with a leading seed dimension


def seeded_students(make_student: Callable[[], nn.Module], seeds: Sequence[int]) -> list[nn.Module]:
    """One ``make_student()`` per seed, each right after ``seed_everything(seed)``: a ``fit`` run's initial weights."""
    students = []
    for seed in seeds:
        seed_everything(seed)
        students.append(make_student())
    return students


def _copy_losses(loss_fn: Callable[..., Tensor], out: Tensor, targets: tuple[Tensor, ...]) -> Tensor:
    """The ``K`` per-copy mean losses, shape ``(K,)``: ``loss_fn`` on each copy's outputs and targets.

    A loop, not ``vmap``: kdlib's losses branch on the data (missing labels, missing readings).
    """
    return torch.stack([loss_fn(o, *t) for o, *t in zip(out, *targets)])


@torch.no_grad()
def _predict(base: nn.Module, params: Stack, buffers: Stack, xs: tuple[Tensor, ...], batch_size: int = 1024) -> Tensor:
    """Every copy's outputs on the same inputs, ``(K, n, ...)`` on the CPU, in eval mode (like :func:`kdlib.predict`)."""
    base.eval()
    device = next(iter(params.values())).device
    run = torch.vmap(lambda p, b, *x: functional_call(base, (p, b), x), in_dims=(0, 0, *[None] * len(xs)))
    n = xs[0].shape[0]
    return torch.cat([run(params, buffers, *(x[i : i + batch_size].to(device) for x in xs)).cpu()
                      for i in range(0, n, batch_size)], dim=1)


def fit_stacked(
    models: Sequence[nn.Module],
    inputs: Tensors,
    targets: Tensors,
    loss_fn: Callable[..., Tensor],
    *,
    seeds: Sequence[int],
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 1e-3,
    optimizer: Callable[..., torch.optim.Optimizer] | None = None,
    scheduler: Callable[[torch.optim.Optimizer], torch.optim.lr_scheduler.LRScheduler] | None = None,
    val_data: tuple[Tensors, Tensors] | None = None,
    val_metric: Callable[..., float] | None = None,
    higher_is_better: bool | None = None,
    restore_best: bool = True,
    device: torch.device | str | None = None,
) -> list[History]:
    """Train ``models`` (same architecture) together, copy ``k`` as ``fit(models[k], ..., seed=seeds[k])`` would.

    The arguments mean what they mean for :func:`kdlib.fit` (an ``optimizer`` factory must be
    elementwise, e.g. Adam, AdamW, SGD). The models are trained in place (eval mode on return,
    on ``device``). Returns one :class:`~kdlib.train.History` per model; ``epoch_seconds``
    are the stacked epoch's (all ``K`` copies, validation included), the same for every copy.
    """
    if len(models) < 1 or len(seeds) != len(models):
        raise ValueError(f"give one seed per model: {len(models)} models, {len(seeds)} seeds")
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be >= 1, got {epochs}, {batch_size}")
    xs, ys = _as_tuple(inputs), _as_tuple(targets)
    n = _num_samples(xs, ys, "training")
    if val_data is not None:
        if val_metric is None:
            raise ValueError("val_data needs val_metric, e.g. kdlib.metrics.accuracy or kdlib.metrics.masked_mae")
        vx, vy = _as_tuple(val_data[0]), _as_tuple(val_data[1])
        _num_samples(vx, vy, "validation")
        declared = getattr(val_metric, "higher_is_better", None)
        if declared is not None and higher_is_better not in (None, declared):
            raise ValueError(f"higher_is_better={higher_is_better} contradicts val_metric.higher_is_better={declared}")
        higher_is_better = declared if higher_is_better is None else higher_is_better
        if higher_is_better is None:
            raise ValueError("val_metric has no higher_is_better attribute: pass higher_is_better=True or False")
    device = torch.device(device) if device is not None else default_device()
    base = copy.deepcopy(models[0]).to(device)
    stacked_params, stacked_buffers = stack_module_state(list(models))
    params = {k: p.detach().to(device).requires_grad_(p.requires_grad) for k, p in stacked_params.items()}
    buffers = {k: b.to(device) for k, b in stacked_buffers.items()}
    trained = [p for p in params.values() if p.requires_grad]
    fused = device.type in ("cpu", "cuda")  # one kernel for all tensors: same update, less per-step overhead
    opt = optimizer(trained) if optimizer is not None else torch.optim.Adam(trained, lr=lr, fused=fused)
    sched = scheduler(opt) if scheduler is not None else None
    xs, ys = tuple(x.to(device) for x in xs), tuple(y.to(device) for y in ys)
    gens = [torch.Generator().manual_seed(seed) for seed in seeds]
    step = torch.vmap(lambda p, b, *x: functional_call(base, (p, b), x), randomness="different")

    histories = [History() for _ in models]
    best: list[float | None] = [None] * len(models)
    best_state: list[Stack | None] = [None] * len(models)
    for epoch in range(epochs):
        t0 = time.perf_counter()
        base.train()
        perm = torch.stack([torch.randperm(n, generator=g) for g in gens]).to(device)  # (K, n)
        totals = [0.0] * len(models)
        for i in range(0, n, batch_size):
            idx = perm[:, i : i + batch_size]  # (K, B): each copy's own batch
            losses = _copy_losses(loss_fn, step(params, buffers, *(x[idx] for x in xs)), tuple(y[idx] for y in ys))
            opt.zero_grad(set_to_none=True)
            losses.sum().backward()  # copy k's parameters get only loss k's gradient
            opt.step()
            values = losses.tolist()  # the one sync per batch
            for k, v in enumerate(values):
                if not math.isfinite(v):
                    raise FloatingPointError(f"training loss {v} for seed {seeds[k]} in epoch {epoch}, batch "
                                             f"{i // batch_size}: look for NaN/inf in the inputs or targets, log(0) "
                                             "or /0 in loss_fn, or a too high learning rate")
                totals[k] += v * idx.shape[1]
        for h, total in zip(histories, totals):
            h.train_loss.append(total / n)
        if sched is not None:
            sched.step()
        if val_data is not None:
            preds = _predict(base, params, buffers, vx)
            for k, h in enumerate(histories):
                score = float(val_metric(preds[k], *vy))
                h.val_score.append(score)
                if math.isnan(score):
                    warnings.warn(f"seed {seeds[k]}, epoch {epoch}: the validation score is NaN, so never the best",
                                  stacklevel=2)
                elif best[k] is None or (score > best[k] if higher_is_better else score < best[k]):
                    best[k], h.best_epoch = score, epoch
                    if restore_best:
                        best_state[k] = {name: t[k].detach().clone() for name, t in chain(params.items(), buffers.items())}
        for h in histories:
            h.epoch_seconds.append(time.perf_counter() - t0)
    with torch.no_grad():
        for k, model in enumerate(models):
            if val_data is not None and histories[k].best_epoch is None:
                warnings.warn(f"seed {seeds[k]}: every validation score is NaN: no best epoch; the last epoch's "
                              "weights are kept", stacklevel=2)
            state = best_state[k] or {name: t[k] for name, t in chain(params.items(), buffers.items())}
            model.to(device)
            for name, t in chain(model.named_parameters(), model.named_buffers()):
                t.copy_(state[name])
            model.eval()
    return histories
