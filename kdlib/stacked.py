r"""Train K seeds of one small model at once: stacked parameters, one batched step per batch.

For small students bound by per-step overhead. The copies' parameters get a leading seed dimension and run as
one model (:func:`torch.func.functional_call` under :func:`torch.vmap`); the summed loss gives each copy only its
own gradient and an elementwise optimiser (Adam, AdamW, SGD) is ``K`` optimisers: ``K`` :func:`kdlib.fit` runs up
to float rounding (batched matmuls round differently; dropout masks differ per copy).
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Callable, Sequence
from itertools import chain

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state

from .train import (History, OptimizerFactory, SchedulerFactory, Tensors, _check_fit_args, _check_loss, _is_best,
                    default_device, seed_everything)

__all__: list[str] = ["seeded_students", "fit_stacked"]

Stack = dict[str, Tensor]  # parameter or buffer name -> tensor with a leading seed dimension


def seeded_students(make_student: Callable[[], nn.Module], seeds: Sequence[int]) -> list[nn.Module]:
    """One ``make_student()`` per seed, each right after ``seed_everything(seed)``: a ``fit`` run's initial weights."""
    return [(seed_everything(seed), make_student())[1] for seed in seeds]


@torch.no_grad()
def _predict(base: nn.Module, params: Stack, buffers: Stack, xs: tuple[Tensor, ...], batch_size: int = 1024) -> Tensor:
    """Every copy's outputs on the same inputs, ``(K, n, ...)`` on the CPU, in eval mode (cf. :func:`kdlib.predict`)."""
    base.eval()
    device = next(iter(params.values())).device
    run = torch.vmap(lambda p, b, *x: functional_call(base, (p, b), x), in_dims=(0, 0, *[None] * len(xs)))
    return torch.cat([run(params, buffers, *(x[i : i + batch_size].to(device) for x in xs)).cpu()
                      for i in range(0, len(xs[0]), batch_size)], dim=1)


def fit_stacked(
    models: Sequence[nn.Module], inputs: Tensors, targets: Tensors, loss_fn: Callable[..., Tensor], *,
    seeds: Sequence[int], epochs: int = 10, batch_size: int = 64, lr: float = 1e-3,
    optimizer: OptimizerFactory | None = None, scheduler: SchedulerFactory | None = None,
    val_data: tuple[Tensors, Tensors] | None = None, val_metric: Callable[..., float] | None = None,
    higher_is_better: bool | None = None, restore_best: bool = True, device: torch.device | str | None = None,
) -> list[History]:
    """Train ``models`` (same architecture) together, copy ``k`` as ``fit(models[k], ..., seed=seeds[k])`` would.

    Arguments as for :func:`kdlib.fit` (``optimizer`` must be elementwise). The models are trained in place (eval
    mode, on ``device``). Every returned History's ``epoch_seconds`` is the stacked epoch's (all ``K`` copies).
    """
    if len(models) < 1 or len(seeds) != len(models):
        raise ValueError(f"give one seed per model: {len(models)} models, {len(seeds)} seeds")
    xs, ys, n, vx, vy, higher_is_better = _check_fit_args(inputs, targets, epochs, batch_size, val_data, val_metric,
                                                          higher_is_better)
    device = torch.device(device) if device is not None else default_device()
    base = copy.deepcopy(models[0]).to(device)
    stacked_params, stacked_buffers = stack_module_state(list(models))
    # Linear weights held as (K, in, out), the layout of their gradient: no transposing copy in each step
    flip = {f"{name}.weight" for name, m in base.named_modules() if isinstance(m, nn.Linear)}
    leaves = {k: (p.transpose(1, 2) if k in flip else p).detach().contiguous().to(device).requires_grad_(p.requires_grad)
              for k, p in stacked_params.items()}
    buffers = {k: b.to(device) for k, b in stacked_buffers.items()}

    def stack() -> Stack:  # the parameters as the model expects them: views of the leaves
        return {k: p.transpose(1, 2) if k in flip else p for k, p in leaves.items()}

    def state(k: int) -> Stack:  # copy k's weights
        return {name: t[k] for name, t in chain(stack().items(), buffers.items())}

    trained = [p for p in leaves.values() if p.requires_grad]
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
            bx, by = (tuple(t.index_select(0, idx.flatten()).unflatten(0, idx.shape) for t in ts) for ts in (xs, ys))
            out = step(stack(), buffers, *bx)  # (K, B, ...)
            # a loop, not vmap: kdlib's losses branch on the data (missing labels or readings)
            losses = torch.stack([loss_fn(o, *t) for o, *t in zip(out, *by)])
            opt.zero_grad(set_to_none=True)
            losses.sum().backward()  # copy k's parameters get only loss k's gradient
            opt.step()
            for k, v in enumerate(losses.tolist()):  # the one sync per batch
                _check_loss(v, epoch, i // batch_size, seeds[k])
                totals[k] += v * idx.shape[1]
        for h, total in zip(histories, totals):
            h.train_loss.append(total / n)
        if sched is not None:
            sched.step()
        if val_data is not None:
            preds = _predict(base, stack(), buffers, vx)
            for k, h in enumerate(histories):
                score = float(val_metric(preds[k], *vy))
                h.val_score.append(score)
                if _is_best(score, best[k], higher_is_better, f"seed {seeds[k]}, epoch {epoch}"):
                    best[k], h.best_epoch = score, epoch
                    best_state[k] = {name: t.detach().clone() for name, t in state(k).items()} if restore_best else None
        seconds = time.perf_counter() - t0
        for h in histories:
            h.epoch_seconds.append(seconds)
    with torch.no_grad():
        for k, model in enumerate(models):
            if val_data is not None and histories[k].best_epoch is None:
                warnings.warn(f"seed {seeds[k]}: every validation score is NaN; last epoch's weights kept", stacklevel=2)
            weights = best_state[k] or state(k)
            for name, t in chain(model.to(device).named_parameters(), model.named_buffers()):
                t.copy_(weights[name])
            model.eval()
    return histories
