"""Datasets of the book: MNIST and the first week of METR-LA, held in memory.

Where the files live
--------------------
Every loader reads from one *data directory*:

* the environment variable ``KDLIB_DATA`` when it is set (CI and the tests set it
  to the read-only copy in ``../shared/data``);
* otherwise ``<repository>/data`` when kdlib runs from a checkout (git-ignored);
* otherwise ``~/.cache/kdlib`` (kdlib installed from a wheel, e.g. on Colab).

A missing file is downloaded from its canonical URL when the machine is online.
Offline, the loader raises :class:`FileNotFoundError` naming the file, the URL and
the variable to set. The loaders never write next to files that already exist, so a
read-only data directory works as long as it is complete.

Forecasting windows
-------------------
:func:`traffic_splits` cuts the speed matrix chronologically into train / val /
test (70/10/20 % of the time steps) *first* and only then slides windows inside
each part, so no window (inputs or targets) crosses a split boundary. The
:class:`StandardScaler` is fitted on the training part alone.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import urllib.request
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor

DATA_ENV = "KDLIB_DATA"

# ---------------------------------------------------------------------------
# The data directory and verified downloads
# ---------------------------------------------------------------------------


def user_dir(env_var: str, repo_subdir: str) -> Path:
    """``$env_var`` if set, else ``<repository>/<repo_subdir>`` in a checkout, else ``~/.cache/kdlib``."""
    env = os.environ.get(env_var)
    if env:
        return Path(env).expanduser().resolve()
    repo = Path(__file__).resolve().parents[1]
    if (repo / "pyproject.toml").exists() and (repo / "kdlib").is_dir():
        return repo / repo_subdir
    return Path.home() / ".cache" / "kdlib"


def data_dir() -> Path:
    """The directory the loaders read from (see the module docstring)."""
    return user_dir(DATA_ENV, "data")


def sha256sum(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _missing(path: Path, url: str, reason: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"Dataset file {path} is missing and could not be downloaded from {url} "
        f"({reason}). Download it by hand into that folder, or set the environment "
        f"variable {DATA_ENV} to a directory that already holds the data "
        f"(e.g. {DATA_ENV}=../shared/data)."
    )


def fetch(path: Path, url: str, sha256: str) -> Path:
    """Return ``path`` after checking its SHA-256, downloading it first if absent.

    Raises:
        FileNotFoundError: the file is absent and the download failed (offline).
        ValueError: the file exists but its checksum differs (corrupt or wrong file).
    """
    path = Path(path)
    if not path.exists():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + ".part")
            urllib.request.urlretrieve(url, tmp)  # noqa: S310 - fixed https URLs
            tmp.replace(path)
        except Exception as exc:  # offline, read-only folder, HTTP error, ...
            raise _missing(path, url, f"{type(exc).__name__}: {exc}") from exc
    digest = sha256sum(path)
    if digest != sha256:
        raise ValueError(
            f"{path} has sha256 {digest}, expected {sha256}. The file is corrupt or "
            f"not the expected version: delete it and let kdlib download it from {url}."
        )
    return path


# ---------------------------------------------------------------------------
# MNIST
# ---------------------------------------------------------------------------

MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


@dataclass(frozen=True)
class MNIST:
    """MNIST as in-memory float tensors, normalised with training-split statistics.

    Facts: 60,000 training and 10,000 test images of 28x28 grey pixels, 10 classes;
    pixels are scaled to [0, 1] and then standardised with the training split's
    mean 0.1307 and std 0.3081 (computed here, not hard-coded).

    Attributes:
        x_train: ``(60000, 1, 28, 28)`` float32.
        y_train: ``(60000,)`` int64 labels 0-9.
        x_test: ``(10000, 1, 28, 28)`` float32.
        y_test: ``(10000,)`` int64.
        mean, std: the training-split pixel statistics used for normalisation.
    """

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    mean: float
    std: float


@lru_cache(maxsize=2)
def _mnist_cached(root: str) -> MNIST:
    from torchvision.datasets import MNIST as TorchvisionMNIST

    raw = Path(root) / "MNIST" / "raw"
    absent = [f for f in MNIST_FILES if not (raw / f).exists()]
    try:
        train = TorchvisionMNIST(root, train=True, download=bool(absent))
        test = TorchvisionMNIST(root, train=False, download=False)
    except Exception as exc:
        name = raw / (absent[0] if absent else MNIST_FILES[0])
        raise _missing(name, MNIST_URL + name.name + ".gz", f"{type(exc).__name__}: {exc}") from exc
    x_train = train.data.float().div_(255.0)
    x_test = test.data.float().div_(255.0)
    mean, std = x_train.mean().item(), x_train.std().item()
    return MNIST(
        x_train=x_train.sub_(mean).div_(std).unsqueeze(1),
        y_train=train.targets.long(),
        x_test=x_test.sub_(mean).div_(std).unsqueeze(1),
        y_test=test.targets.long(),
        mean=mean,
        std=std,
    )


def load_mnist() -> MNIST:
    """Load MNIST from ``data_dir()`` (downloading it once if absent and online).

    The IDX files are parsed by ``torchvision.datasets.MNIST`` and turned once into
    normalised float tensors, cached for the life of the process (~220 MB).
    """
    return _mnist_cached(str(data_dir()))


# ---------------------------------------------------------------------------
# METR-LA, first week
# ---------------------------------------------------------------------------

_TGCN = "https://raw.githubusercontent.com/lehaifeng/T-GCN/master/data/"
_DCRNN = "https://raw.githubusercontent.com/liyaguang/DCRNN/master/data/sensor_graph/"
METR_LA_FILES: dict[str, tuple[str, str]] = {
    "los_speed.csv": (_TGCN + "los_speed.csv", "7b732d86ae32b2930595becba28aff39dacbfb2197e250fc0332e1744ce2cbf4"),
    "los_adj.csv": (_TGCN + "los_adj.csv", "7a6eb41e10677992b5af50f5ab187c6c05c5c3a92cb973950cfddbf857361e76"),
    "adj_mx.pkl": (_DCRNN + "adj_mx.pkl", "a35687c6e15aa228dc45027b0ed2a0ea0f4ec78f573deb992c595092d12f61b3"),
    "graph_sensor_ids.txt": (_DCRNN + "graph_sensor_ids.txt", "3ba026caa2e6263ab0ea54b0fa1b125dbfa7216544cd05313b555e826292b990"),
    "graph_sensor_locations.csv": (
        _DCRNN + "graph_sensor_locations.csv",
        "eb8ea96e07358b45d0e4ba3b89c2673fa20c54af50150249e627389e749ade6f",
    ),
}
STEPS_PER_DAY = 288  # 5-minute steps


@dataclass(frozen=True)
class MetrLAWeek:
    """The first week of METR-LA: traffic speed on Los Angeles County highways.

    Facts: 207 loop detectors (nodes), 2016 steps of 5 minutes (2012-03-01 00:00 to
    2012-03-07 23:55, 288 steps a day), speed in mph, 0 % missing (gaps were filled
    by the T-GCN authors: no zeros, min 1, max 70, mean 58.89). Graph: DCRNN's
    directed Gaussian-kernel road-distance adjacency, 207x207, 1722 non-zeros
    (self-loops included). Sources: Jagadish et al. 2014; Li et al. 2018 (DCRNN);
    Zhao et al. 2019 (T-GCN).

    Attributes:
        speed: ``(2016, 207)`` float32, mph; column j is sensor ``sensor_ids[j]``.
        timestamps: the 2016 5-minute time stamps.
        sensor_ids: the 207 sensor ids, in the column order of ``speed`` and ``adj``.
        locations: ``(207, 2)`` float64 (latitude, longitude) per sensor.
        adj: ``(207, 207)`` float32 DCRNN adjacency, ``adj[i, j]`` weight of edge i -> j.
    """

    speed: Tensor
    timestamps: pd.DatetimeIndex
    sensor_ids: list[str]
    locations: np.ndarray
    adj: Tensor

    @property
    def num_nodes(self) -> int:
        return self.speed.shape[1]

    @property
    def step_of_day(self) -> Tensor:
        """``(2016,)`` int64 index of each step within its day (0..287)."""
        t = self.timestamps
        return torch.as_tensor((t.hour * 60 + t.minute) // 5, dtype=torch.long)


def metr_la_file(name: str) -> Path:
    """Path of one verified METR-LA week file, downloading it if absent and online."""
    if name not in METR_LA_FILES:
        raise KeyError(f"unknown METR-LA file {name!r}; known: {sorted(METR_LA_FILES)}")
    url, digest = METR_LA_FILES[name]
    return fetch(data_dir() / "metr-la-week" / name, url, digest)


@lru_cache(maxsize=2)
def _metr_la_cached(root: str) -> MetrLAWeek:
    speed_df = pd.read_csv(metr_la_file("los_speed.csv"))
    ids = metr_la_file("graph_sensor_ids.txt").read_text().strip().split(",")
    with open(metr_la_file("adj_mx.pkl"), "rb") as f:
        pkl_ids, _, adj = pickle.load(f, encoding="latin1")
    locs = pd.read_csv(metr_la_file("graph_sensor_locations.csv"))
    if list(speed_df.columns) != ids or list(pkl_ids) != ids:
        raise ValueError("METR-LA files disagree on the sensor order; re-download them.")
    loc = locs.set_index(locs["sensor_id"].astype(str)).loc[ids, ["latitude", "longitude"]]
    return MetrLAWeek(
        speed=torch.tensor(speed_df.to_numpy(np.float32)),
        timestamps=pd.date_range("2012-03-01 00:00", periods=len(speed_df), freq="5min"),
        sensor_ids=ids,
        locations=loc.to_numpy(np.float64),
        adj=torch.tensor(np.asarray(adj, dtype=np.float32)),
    )


def load_metr_la_week() -> MetrLAWeek:
    """Load the METR-LA week from ``data_dir()/metr-la-week`` (each file sha256-checked)."""
    return _metr_la_cached(str(data_dir()))


# ---------------------------------------------------------------------------
# Scaling, windows and chronological splits
# ---------------------------------------------------------------------------


class StandardScaler:
    """z-score scaling ``(x - mean) / std`` with statistics from the data it is fitted on.

    Fit it on the training split only, then transform every split with it.
    ``axis=None`` uses one global mean/std; an int or tuple keeps per-slice statistics
    (e.g. ``axis=0`` on a ``(steps, nodes)`` matrix gives one mean per sensor).
    """

    def __init__(self, axis: int | tuple[int, ...] | None = None) -> None:
        self.axis = axis
        self.mean: Tensor | None = None
        self.std: Tensor | None = None

    def fit(self, x: Tensor) -> "StandardScaler":
        if self.axis is None:
            self.mean, self.std = x.mean(), x.std()
        else:
            self.mean = x.mean(dim=self.axis, keepdim=True)
            self.std = x.std(dim=self.axis, keepdim=True)
        self.std = torch.where(self.std > 0, self.std, torch.ones_like(self.std))
        return self

    def _check(self) -> tuple[Tensor, Tensor]:
        if self.mean is None or self.std is None:
            raise RuntimeError("StandardScaler is not fitted: call .fit(train_data) first.")
        return self.mean, self.std

    def transform(self, x: Tensor) -> Tensor:
        mean, std = self._check()
        return (x - mean.to(x)) / std.to(x)

    def inverse_transform(self, x: Tensor) -> Tensor:
        mean, std = self._check()
        return x * std.to(x) + mean.to(x)

    def fit_transform(self, x: Tensor) -> Tensor:
        return self.fit(x).transform(x)

    def __repr__(self) -> str:
        if self.mean is None:
            return "StandardScaler(unfitted)"
        if self.mean.numel() == 1:
            return f"StandardScaler(mean={self.mean.item():.4f}, std={self.std.item():.4f})"
        return f"StandardScaler(axis={self.axis}, shape={tuple(self.mean.shape)})"


def chronological_split(
    num_steps: int, fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)
) -> dict[str, range]:
    """Split ``range(num_steps)`` into consecutive train / val / test ranges.

    ``train`` gets ``int(f_train * num_steps)`` steps, ``val`` ``int(f_val * num_steps)``
    and ``test`` the rest, in time order.
    """
    if len(fractions) != 3 or any(f <= 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"fractions must be three positive numbers summing to 1, got {fractions}")
    n_train = int(fractions[0] * num_steps)
    n_val = int(fractions[1] * num_steps)
    return {
        "train": range(0, n_train),
        "val": range(n_train, n_train + n_val),
        "test": range(n_train + n_val, num_steps),
    }


def sliding_windows(series: Tensor, in_steps: int = 12, out_steps: int = 12) -> tuple[Tensor, Tensor]:
    """All windows of ``in_steps`` inputs followed by ``out_steps`` targets.

    Args:
        series: ``(steps, ...)`` tensor, time first.
    Returns:
        ``x`` of shape ``(W, in_steps, ...)`` and ``y`` of shape ``(W, out_steps, ...)`` with
        ``W = steps - in_steps - out_steps + 1``; window ``w`` reads steps
        ``w .. w+in_steps-1`` and predicts ``w+in_steps .. w+in_steps+out_steps-1``.
    """
    if in_steps < 1 or out_steps < 1:
        raise ValueError(f"in_steps and out_steps must be >= 1, got {in_steps}, {out_steps}")
    span = in_steps + out_steps
    if series.shape[0] < span:
        raise ValueError(f"a series of {series.shape[0]} steps is too short for windows of {span} steps")
    w = series.unfold(0, span, 1)  # (W, ..., span)
    w = w.movedim(-1, 1)  # (W, span, ...)
    return w[:, :in_steps].contiguous(), w[:, in_steps:].contiguous()


@dataclass
class TrafficWindows:
    """Forecasting windows of one split.

    Attributes:
        x: ``(W, in_steps, N)`` scaled input speeds (z-scores of the training split).
        tod: ``(W,)`` int64 step of day (0..287) of the *last input* step.
        y: ``(W, out_steps, N)`` target speeds in mph (unscaled).
        start: ``(W,)`` int64 index in the full series of each window's first input step.
    """

    x: Tensor
    tod: Tensor
    y: Tensor
    start: Tensor

    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def inputs(self) -> tuple[Tensor, Tensor]:
        """``(x, tod)``: the arguments of the book's traffic models."""
        return self.x, self.tod


def traffic_splits(
    data: MetrLAWeek | None = None,
    in_steps: int = 12,
    out_steps: int = 12,
    fractions: tuple[float, float, float] = (0.7, 0.1, 0.2),
) -> tuple[dict[str, TrafficWindows], StandardScaler]:
    """Chronological train/val/test windows of the METR-LA week and the fitted scaler.

    The series is split in time first (:func:`chronological_split`), then windows are
    slid inside each part, so no window spans two splits. The scaler is fitted on the
    training part's speeds alone and applied to every split's inputs; targets stay in mph.
    With the defaults: 1411 / 201 / 404 steps give 1388 / 178 / 381 windows.
    """
    data = data if data is not None else load_metr_la_week()
    parts = chronological_split(data.speed.shape[0], fractions)
    scaler = StandardScaler().fit(data.speed[parts["train"].start : parts["train"].stop])
    sod = data.step_of_day
    out: dict[str, TrafficWindows] = {}
    for name, r in parts.items():
        seg = data.speed[r.start : r.stop]
        x, y = sliding_windows(scaler.transform(seg), in_steps, out_steps)
        _, y = sliding_windows(seg, in_steps, out_steps)
        start = torch.arange(x.shape[0]) + r.start
        out[name] = TrafficWindows(x=x, tod=sod[start + in_steps - 1], y=y, start=start)
    return out, scaler
