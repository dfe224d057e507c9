"""The book's teachers: architectures, verified loading, cached outputs and the retraining CLI.

``load_teacher(name)`` returns a shipped, verified teacher; :func:`cached_predict` keeps outputs on disk. Each recipe
seeds everything, trains with :func:`kdlib.fit` and writes ``checkpoints/<name>.pt``, its SHA-256 in
``checkpoints/SHA256SUMS`` and the wall time and machine in ``checkpoints/<name>.json``::

    python -m kdlib.teachers mnist-teacher           # SmallCNN on MNIST
    python -m kdlib.teachers metr-la-teacher         # graph teacher (ensemble) on the METR-LA week
    python -m kdlib.teachers metr-la-fold-teachers   # two members, one per half of the training windows
    python -m kdlib.teachers metr-la-outage-teacher  # one member trained under simulated sensor outages
    python -m kdlib.teachers --list
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import time
from collections.abc import Callable
from typing import NamedTuple
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .data import load_metr_la_week, load_mnist
from .files import CHECKPOINT_DIR, cache_dir, load_checkpoint, save_checkpoint, tensor_digest
from .losses import l1_loss
from .metrics import accuracy, errors, masked_mae
from .models import DiffusionMLP, Ensemble, SmallCNN
from .preprocessing import (TrafficWindows, chronological_halves, hide_outages, random_shift, sensor_outages,
                            traffic_splits)
from .profiling import training_step_seconds
from .train import Tensors, _as_tuple, fit, predict, seed_everything

__all__: list[str] = ["Teacher", "TEACHERS", "load_teacher", "cached_predict", "mnist_teacher_model", "metr_la_teacher_model",
           "train_mnist_teacher", "train_metr_la_teacher", "estimate_training_seconds",
           "MNIST_TEACHER_TRAINING", "METR_LA_TEACHER", "METR_LA_TEACHER_TRAINING", "train_metr_la_fold_teachers",
           "metr_la_fold_blocks", "fold_forecasts", "METR_LA_OUTAGES", "metr_la_outages", "train_metr_la_outage_teacher"]


def mnist_teacher_model() -> SmallCNN:
    """The architecture of the shipped MNIST teacher (load its checkpoint into this)."""
    return SmallCNN(channels=(32, 64), hidden=128, dropout=0.25)


MNIST_TEACHER_TRAINING = dict(epochs=10, batch_size=128, lr=2e-3)
"""Training schedule of the shipped MNIST teacher (used by the recipe and by :func:`estimate_training_seconds`)."""


def train_mnist_teacher(seed: int = 0, epochs: int = MNIST_TEACHER_TRAINING["epochs"], progress: bool = True) -> SmallCNN:
    """SmallCNN on the 55,000 training images: Adam (lr 2e-3, cosine decay to 0), batch 128, ``epochs`` epochs, each
    image jittered by up to 2 pixels (as Hinton et al. 2015 did)."""
    seed_everything(seed)
    data = load_mnist()
    model = mnist_teacher_model()
    gen = torch.Generator().manual_seed(seed + 1)
    fit(model, data.x_train, data.y_train, F.cross_entropy, epochs=epochs,
        batch_size=MNIST_TEACHER_TRAINING["batch_size"], lr=MNIST_TEACHER_TRAINING["lr"],
        scheduler=lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs),
        augment=lambda batch: (random_shift(batch[0], 2, gen),), seed=seed, progress=progress)
    logits = predict(model.cpu(), data.x_test)
    print(f"mnist-teacher: test accuracy {accuracy(logits, data.y_test):.4f}, "
          f"{errors(logits, data.y_test)} errors out of 10,000")
    return model


METR_LA_TEACHER = dict(hidden=64, layers=2, node_dim=32, tod_dim=32, hops=2, adaptive=True, dropout=0.2)
"""Hyperparameters of each member of the shipped METR-LA teacher (chosen on validation MAE)."""


def metr_la_teacher_model(members: int = 2, adj: Tensor | None = None) -> Ensemble:
    """The shipped METR-LA teacher's architecture: an :class:`Ensemble` of ``members`` :class:`DiffusionMLP`.

    ``adj``: build it on another sensor graph instead (no scaler; e.g. to count its cost on a larger network).
    """
    if adj is not None:
        return Ensemble([DiffusionMLP(adj, **METR_LA_TEACHER) for _ in range(members)])
    data = load_metr_la_week()
    _, scaler = traffic_splits(data)
    return Ensemble([DiffusionMLP(data.adj, scaler, **METR_LA_TEACHER) for _ in range(members)])


METR_LA_TEACHER_TRAINING = dict(members=2, epochs=15, batch_size=64, lr=3e-3)
"""Training schedule of the shipped METR-LA teacher; 15 epochs (formerly 40, constant lr) fit the retraining time
on a shared 2-core machine, not chosen on validation."""


def train_metr_la_teacher(seed: int = 0, members: int = METR_LA_TEACHER_TRAINING["members"],
                          epochs: int = METR_LA_TEACHER_TRAINING["epochs"], lr: float = METR_LA_TEACHER_TRAINING["lr"],
                          progress: bool = True) -> Ensemble:
    """Each member: seed ``seed + m``, L1 loss in mph on the masked labels, Adam (``lr``), batch 64, ``epochs`` epochs,
    the best validation-MAE epoch's weights restored."""
    return _train_members("metr-la-teacher", [lambda train: train] * members, seed, epochs, lr, progress)


def _train_members(name: str, views: list[Callable[[TrafficWindows], TrafficWindows]], seed: int, epochs: int,
                   lr: float, progress: bool) -> Ensemble:
    """One DiffusionMLP member per entry of ``views``: what of the training windows that member sees."""
    data = load_metr_la_week()
    splits, scaler = traffic_splits(data)
    val, test = splits["val"], splits["test"]
    trained = []
    for m, view in enumerate(views):
        seed_everything(seed + m)
        member = DiffusionMLP(data.adj, scaler, **METR_LA_TEACHER)
        train = view(splits["train"])
        hist = fit(member, train.inputs, train.y, l1_loss, epochs=epochs,
                   batch_size=METR_LA_TEACHER_TRAINING["batch_size"], lr=lr,
                   val_data=(val.inputs, val.y), val_metric=masked_mae, seed=seed + m, progress=progress)
        pred = predict(member.cpu(), test.inputs)
        print(f"member {m} ({len(train)} training windows): best epoch {hist.best_epoch + 1}/{epochs}, val MAE "
              f"{hist.best_score:.4f}, test MAE@60min {masked_mae(pred[:, -1], test.y[:, -1]):.4f}, "
              f"{sum(hist.epoch_seconds):.0f} s", flush=True)
        trained.append(member)
    ensemble = Ensemble(trained)
    pred = predict(ensemble, test.inputs)
    print(f"{name}: test MAE at 15/30/60 min "
          + " / ".join(f"{masked_mae(pred[:, h - 1], test.y[:, h - 1]):.4f}" for h in (3, 6, 12)))
    return ensemble


def metr_la_fold_blocks() -> tuple[Tensor, Tensor]:
    """The two blocks of training windows of the fold teachers: :func:`kdlib.chronological_halves`."""
    train = traffic_splits(load_metr_la_week())[0]["train"]
    return chronological_halves(len(train), train.x.shape[1] + train.y.shape[1])


def train_metr_la_fold_teachers(seed: int = 0, epochs: int = METR_LA_TEACHER_TRAINING["epochs"],
                                lr: float = METR_LA_TEACHER_TRAINING["lr"], progress: bool = True) -> Ensemble:
    """Two teachers for out-of-fold forecasts: member ``f`` is a shipped-teacher member (seed ``seed + f``) trained only
    on block ``f`` of :func:`metr_la_fold_blocks`; :func:`fold_forecasts` labels each block with the other one."""
    return _train_members("metr-la-fold-teachers", [partial(_window_subset, block=b) for b in metr_la_fold_blocks()],
                          seed, epochs, lr, progress)


def _window_subset(train: TrafficWindows, block: Tensor) -> TrafficWindows:
    return TrafficWindows(x=train.x[block], tod=train.tod[block], y=train.y[block], start=train.start[block],
                          steps=train.steps)


METR_LA_OUTAGES = dict(rate=0.6, length=72, seed=0)
"""The outage teacher's :func:`kdlib.sensor_outages` (training steps): each sensor's 6-hour blocks lost with p = 0.6."""


def metr_la_outages(train: TrafficWindows) -> Tensor:
    """The lost readings of :data:`METR_LA_OUTAGES` over the training split's steps, ``(steps, sensors)``."""
    return sensor_outages(len(train.steps), train.x.shape[2], **METR_LA_OUTAGES)


def train_metr_la_outage_teacher(seed: int = 0, epochs: int = METR_LA_TEACHER_TRAINING["epochs"],
                                 lr: float = METR_LA_TEACHER_TRAINING["lr"], progress: bool = True) -> Ensemble:
    """One shipped-teacher member trained on :func:`kdlib.hide_outages` of :data:`METR_LA_OUTAGES`."""
    return _train_members("metr-la-outage-teacher", [lambda train: hide_outages(train, metr_la_outages(train))],
                          seed, epochs, lr, progress)


def fold_forecasts(teachers: Ensemble, inputs: Tensors, blocks: tuple[Tensor, Tensor],
                   out_of_fold: bool = True) -> Tensor:
    """Forecasts for ``inputs`` from two members trained on ``blocks``: a window of block ``f`` from member ``1 - f``
    (``out_of_fold=True``) or ``f`` (in-sample); windows in neither block are NaN, so every kdlib loss skips them."""
    if len(teachers.members) != 2 or len(blocks) != 2:
        raise ValueError(f"need two members and two blocks, got {len(teachers.members)} and {len(blocks)}")
    x = _as_tuple(inputs)
    out = None
    for f, block in enumerate(blocks):
        pred = predict(teachers.members[1 - f if out_of_fold else f], tuple(t[block] for t in x))
        if out is None:
            out = torch.full((x[0].shape[0], *pred.shape[1:]), float("nan"))
        out[block] = pred
    return out


def _plain(v: object) -> bool:
    return v is None or isinstance(v, (bool, int, float, str)) or (
        isinstance(v, (tuple, list)) and all(_plain(x) for x in v))


def _model_key(model: nn.Module) -> str:
    """Class, ``repr`` and, per submodule, the plain public attributes and tensors outside ``state_dict``."""
    parts = [f"{type(model).__module__}.{type(model).__qualname__}", repr(model)]
    for name, m in model.named_modules():
        attrs = {k: tensor_digest(v) if isinstance(v, Tensor) else v for k, v in vars(m).items()
                 if not k.startswith("_") and k != "training" and (_plain(v) or isinstance(v, Tensor))}
        parts.append(f"{name}:{type(m).__qualname__}:{sorted(attrs.items())!r}")
    return "\n".join(parts)


def cached_predict(
    model: nn.Module, inputs: Tensors, folder: str | os.PathLike | None = None, key: str = "", **forward_kwargs
) -> Tensor | tuple[Tensor, ...]:
    """:func:`kdlib.predict` with a disk cache (``folder``, default :func:`kdlib.files.cache_dir`).

    The file name hashes the model's class, ``repr``, ``state_dict`` and every submodule's plain public attributes
    and tensors, the inputs, ``forward_kwargs`` and ``key``: pass a ``key`` for any other state the forward pass
    reads (a closure, an outside object). An unwritable folder means no caching, not an error.
    """
    folder = Path(folder) if folder is not None else cache_dir()
    state = model.state_dict()
    h = hashlib.sha256()
    h.update(f"{sorted(forward_kwargs.items())!r}\n{_model_key(model)}\n{key}\n".encode())
    h.update(",".join(state).encode())
    h.update(tensor_digest(*state.values()).encode())
    h.update(tensor_digest(*_as_tuple(inputs)).encode())
    path = folder / f"outputs-{h.hexdigest()[:20]}.pt"
    if path.exists():
        out = torch.load(path, weights_only=True)
        return tuple(out) if isinstance(out, list) else out
    out = predict(model, inputs, **forward_kwargs)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")  # processes sharing the folder never mix writes
        torch.save(list(out) if isinstance(out, tuple) else out, tmp)
        tmp.replace(path)
    except OSError:
        pass
    return out


def _mnist_teacher_steps(steps: int) -> tuple[float, int]:
    plan = MNIST_TEACHER_TRAINING
    data = load_mnist()
    bs = plan["batch_size"]
    gen = torch.Generator().manual_seed(0)
    step = training_step_seconds(mnist_teacher_model(), (data.x_train[:bs],), (data.y_train[:bs],), F.cross_entropy,
                                 lr=plan["lr"], augment=lambda b: (random_shift(b[0], 2, gen),), steps=steps)
    return step, plan["epochs"] * -(-data.x_train.shape[0] // bs)


def _metr_la_teacher_steps(steps: int) -> tuple[float, int]:
    plan = METR_LA_TEACHER_TRAINING
    data = load_metr_la_week()
    splits, scaler = traffic_splits(data)
    train, bs = splits["train"], plan["batch_size"]
    model = DiffusionMLP(data.adj, scaler, **METR_LA_TEACHER)
    step = training_step_seconds(model, tuple(t[:bs] for t in train.inputs), (train.y[:bs],), l1_loss,
                                 lr=plan["lr"], steps=steps)
    return step, plan["members"] * plan["epochs"] * -(-train.x.shape[0] // bs)


def _metr_la_fold_teachers_steps(steps: int) -> tuple[float, int]:
    step, _ = _metr_la_teacher_steps(steps)
    batches = sum(-(-len(b) // METR_LA_TEACHER_TRAINING["batch_size"]) for b in metr_la_fold_blocks())
    return step, METR_LA_TEACHER_TRAINING["epochs"] * batches


def _metr_la_outage_teacher_steps(steps: int) -> tuple[float, int]:
    step, total = _metr_la_teacher_steps(steps)
    return step, total // METR_LA_TEACHER_TRAINING["members"]  # one member


class Teacher(NamedTuple):
    """A shipped teacher: its architecture, its retraining recipe and its cost."""

    model: Callable[[], nn.Module]  # the untrained architecture (load the checkpoint into it)
    train: Callable[[], nn.Module]  # the recipe: python -m kdlib.teachers NAME
    steps: Callable[[int], tuple[float, int]]  # timed steps -> (seconds per training step, steps of the recipe)


TEACHERS: dict[str, Teacher] = {
    "mnist-teacher": Teacher(mnist_teacher_model, train_mnist_teacher, _mnist_teacher_steps),
    "metr-la-teacher": Teacher(metr_la_teacher_model, train_metr_la_teacher, _metr_la_teacher_steps),
    "metr-la-fold-teachers": Teacher(metr_la_teacher_model, train_metr_la_fold_teachers,  # one member per block
                                     _metr_la_fold_teachers_steps),
    "metr-la-outage-teacher": Teacher(partial(metr_la_teacher_model, members=1), train_metr_la_outage_teacher,
                                      _metr_la_outage_teacher_steps),
}
"""Name of a shipped checkpoint -> its :class:`Teacher`."""


def load_teacher(name: str, folder: str | os.PathLike = CHECKPOINT_DIR) -> nn.Module:
    """The shipped teacher ``name`` (a key of :data:`TEACHERS`) with its SHA-256-verified weights, in eval mode."""
    if name not in TEACHERS:
        raise ValueError(f"unknown teacher {name!r}; the shipped teachers are {sorted(TEACHERS)}")
    return load_checkpoint(TEACHERS[name].model(), name, folder, how_to_regenerate=f"python -m kdlib.teachers {name}")


def estimate_training_seconds(name: str, steps: int = 20) -> dict:
    """What retraining a shipped teacher costs here: ``{"step_seconds": .., "steps": .., "seconds": ..}``.

    :func:`kdlib.training_step_seconds` on one batch times the recipe's steps (members x epochs x batches); validation
    is not counted (a slight underestimate; the real time is in ``checkpoints/NAME.json``).
    """
    if name not in TEACHERS:
        raise ValueError(f"unknown recipe {name!r}; choose one of {sorted(TEACHERS)}")
    step, total = TEACHERS[name].steps(steps)
    return {"step_seconds": step, "steps": total, "seconds": step * total}


def main(argv: list[str] | None = None) -> None:
    """``python -m kdlib.teachers NAME`` retrains ``NAME`` and rewrites its checkpoint; ``--list`` lists the names."""
    parser = argparse.ArgumentParser(prog="python -m kdlib.teachers", description=__doc__.splitlines()[0])
    parser.add_argument("name", nargs="?", choices=sorted(TEACHERS), help="checkpoint to regenerate")
    parser.add_argument("--list", action="store_true", help="list the recipes")
    args = parser.parse_args(argv)
    if args.list or args.name is None:
        print("\n".join(sorted(TEACHERS)))
        return
    t0 = time.perf_counter()
    model = TEACHERS[args.name].train()
    seconds = time.perf_counter() - t0
    digest = save_checkpoint(model.cpu(), args.name)
    info = dict(name=args.name, sha256=digest, train_seconds=round(seconds, 1),
                device="cuda" if torch.cuda.is_available() else "cpu", cpu_threads=torch.get_num_threads(),
                machine=f"{platform.machine()} {platform.processor() or ''}".strip(), torch=torch.__version__)
    (CHECKPOINT_DIR / f"{args.name}.json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"saved checkpoints/{args.name}.pt (sha256 {digest[:16]}...) in {seconds:.0f} s "
          f"with {torch.get_num_threads()} CPU threads; timing in checkpoints/{args.name}.json")


if __name__ == "__main__":
    main()
