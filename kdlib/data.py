"""The book's datasets, held in memory: MNIST and the first week of METR-LA (T-GCN's Los-loop release).

Loaders read from :func:`kdlib.data_dir` and download a missing file when online (offline: :class:`FileNotFoundError`
naming the file, URL and variable to set). Every file is checked against its SHA-256 (``MNIST_FILES``,
``METR_LA_FILES``) before parsing (mismatch: :class:`ValueError`); nothing is written next to existing files, so a
read-only data directory works. Scaling, windows and splits: :mod:`kdlib.preprocessing`.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from .files import data_dir, fetch

__all__: list[str] = ["STEPS_PER_DAY", "MNIST_VAL_SIZE", "MNIST", "load_mnist", "MetrLAWeek", "load_metr_la_week",
                      "metr_la_file", "straight_runs", "observed_mask", "FILLED_MIN_POINTS", "FILLED_ATOL",
                      "FILLED_NETWORK_SHARE"]

# --- MNIST ------------------------------------------------------------------

MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
MNIST_FILES: dict[str, str] = {  # the raw IDX files in <data>/MNIST/raw (downloaded as MNIST_URL + name + ".gz")
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
MNIST_VAL_SIZE = 5_000  # the last images of MNIST's training file, held out for every choice the book makes


@dataclass(frozen=True)
class MNIST:
    """MNIST as float tensors in three splits, standardised with the training split's statistics.

    Facts: 28x28 grey pixels, 10 classes. Of the 60,000 training images the first 55,000 train (the shipped teacher
    saw only these), the last ``MNIST_VAL_SIZE`` = 5,000 validate; the 10,000 test images wait until a setting is
    frozen. Pixels in [0, 1] are standardised with the training split's mean (~0.1307) and std (~0.3081), computed.

    Attributes:
        x_train, y_train: ``(55000, 1, 28, 28)`` float32, ``(55000,)`` int64 labels 0-9.
        x_val, y_val / x_test, y_test: 5,000 / 10,000 of each.
        mean, std: the training-split pixel statistics.
    """

    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor
    x_test: Tensor
    y_test: Tensor
    mean: float
    std: float


@lru_cache(maxsize=2)
def _mnist_cached(root: str) -> MNIST:
    raw = Path(root) / "MNIST" / "raw"
    # verified first, so the fixed IDX layout holds: a 16-byte header for images, 8 for labels
    idx = {name: np.fromfile(fetch(raw / name, MNIST_URL + name + ".gz", digest), np.uint8,
                             offset=16 if "images" in name else 8) for name, digest in MNIST_FILES.items()}
    x_all, x_test = (torch.from_numpy(idx[f"{s}-images-idx3-ubyte"]).view(-1, 1, 28, 28).float().div_(255.0)
                     for s in ("train", "t10k"))
    y_all = torch.from_numpy(idx["train-labels-idx1-ubyte"]).long()
    n_train = len(y_all) - MNIST_VAL_SIZE
    mean, std = x_all[:n_train].mean().item(), x_all[:n_train].std().item()
    x_all.sub_(mean).div_(std)
    return MNIST(
        x_train=x_all[:n_train],
        y_train=y_all[:n_train],
        x_val=x_all[n_train:],
        y_val=y_all[n_train:],
        x_test=x_test.sub_(mean).div_(std),
        y_test=torch.from_numpy(idx["t10k-labels-idx1-ubyte"]).long(),
        mean=mean,
        std=std,
    )


def load_mnist() -> MNIST:
    """MNIST from ``data_dir()/MNIST/raw`` (torchvision's layout), cached per process (~220 MB)."""
    return _mnist_cached(str(data_dir()))


# --- METR-LA, first week ----------------------------------------------------

_TGCN = "https://raw.githubusercontent.com/lehaifeng/T-GCN/master/data/"
_DCRNN = "https://raw.githubusercontent.com/liyaguang/DCRNN/master/data/sensor_graph/"
METR_LA_FILES: dict[str, tuple[str, str]] = {
    "los_speed.csv": (_TGCN + "los_speed.csv", "7b732d86ae32b2930595becba28aff39dacbfb2197e250fc0332e1744ce2cbf4"),
    "los_adj.csv": (_TGCN + "los_adj.csv", "7a6eb41e10677992b5af50f5ab187c6c05c5c3a92cb973950cfddbf857361e76"),
    "adj_mx.pkl": (_DCRNN + "adj_mx.pkl", "a35687c6e15aa228dc45027b0ed2a0ea0f4ec78f573deb992c595092d12f61b3"),
    "graph_sensor_ids.txt": (_DCRNN + "graph_sensor_ids.txt",
                             "3ba026caa2e6263ab0ea54b0fa1b125dbfa7216544cd05313b555e826292b990"),
    "graph_sensor_locations.csv": (_DCRNN + "graph_sensor_locations.csv",
                                   "eb8ea96e07358b45d0e4ba3b89c2673fa20c54af50150249e627389e749ade6f"),
}
STEPS_PER_DAY = 288  # 5-minute steps

FILLED_ATOL = 1e-4
"""mph: largest ``|x[t-1] - 2 x[t] + x[t+1]|`` that counts as "on one straight line" (see :func:`straight_runs`)."""

FILLED_MIN_POINTS = 4
"""Fewest consecutive collinear points that :func:`straight_runs` treats as a filled stretch (see there)."""

FILLED_NETWORK_SHARE = 0.5
"""Share of the columns that makes a shorter straight run count when they all have one at that step (see there)."""


def straight_runs(series: Tensor | np.ndarray, min_points: int = FILLED_MIN_POINTS, atol: float = FILLED_ATOL,
                  network_share: float | None = FILLED_NETWORK_SHARE) -> np.ndarray:
    r"""Maximal runs of ``>= min_points`` consecutive points of one column that lie on one straight line.

    Every interior point ``first < t < last`` of a run has a second difference of zero up to ``atol``
    (a constant, stuck stretch has slope 0):

    .. math::
        |x_{t-1,j} - 2 x_{t,j} + x_{t+1,j}| \le \mathrm{atol}.

    A run of 3 also counts when at least ``network_share`` of all columns are on a straight line at each of its
    interior points (a step every sensor misses). Defaults measured on ``los_speed.csv`` (``book/part3/data.ipynb``):
    ``atol`` lies between float32 rounding (~1.2e-5 mph) and the smallest true second difference (~2.0e-3 mph);
    chance gives ~1,180 runs of 3 points in the week but ~7 of 4 (the data: 1582 and 1850).

    Args:
        series: ``(steps, columns)``, time first.
        min_points: fewest points of a run (>= 3: two points are always collinear).
        atol: tolerance on the second difference, in the series' unit.
        network_share: see above; None: only ``min_points`` decides.
    Returns:
        ``(R, 3)`` int64 array of ``(column, first, last)``, sorted by column then time.
    """
    if min_points < 3:
        raise ValueError(f"min_points must be >= 3 (any two points are collinear), got {min_points}")
    x = np.asarray(series, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"series must be (steps, columns), got shape {x.shape}")
    flat = np.abs(x[:-2] - 2 * x[1:-1] + x[2:]) <= atol  # (steps-2, cols): point t+1 is on its neighbours' line
    pad = np.zeros((1, x.shape[1]), np.int8)
    edges = np.diff(np.concatenate([pad, flat.astype(np.int8), pad]), axis=0)  # +1: run of flat starts, -1: ends
    cs, ts = np.nonzero(edges.T == 1)
    ce, te = np.nonzero(edges.T == -1)  # same order: column-major, each start has its end
    first, last = ts, te + 1  # flat[t] covers points t..t+2, so flat t0..t1-1 covers points t0..t1
    keep = last - first + 1 >= min_points
    if network_share is not None:  # interior points t+1 of flat[t]; a run's interior rows are flat[first : last - 1]
        wide = np.concatenate([[0], np.cumsum(flat.mean(axis=1) >= network_share)])  # prefix counts of wide rows
        keep |= (wide[last - 1] - wide[first]) == (last - 1 - first)  # every interior row network-wide
    return np.stack([cs[keep], first[keep], last[keep]], axis=1).astype(np.int64).reshape(-1, 3)


def observed_mask(shape: tuple[int, int], runs: np.ndarray) -> Tensor:
    """``(steps, columns)`` bool, False at each run's interior points (its end points are measurements)."""
    observed = torch.ones(shape, dtype=torch.bool)
    for j, first, last in np.asarray(runs).reshape(-1, 3).tolist():
        observed[first + 1 : last, j] = False
    return observed


@dataclass(frozen=True)
class MetrLAWeek:
    """The first week of METR-LA as released by T-GCN ("Los-loop"), gaps filled by linear interpolation.

    Facts: 207 loop detectors on Los Angeles County highways; 2016 steps of 5 minutes, 2012-03-01 00:00 to
    2012-03-07 23:55 (288 a day); speed in mph (min 1, max 70, mean 58.89). METR-LA (Jagadish et al. 2014; DCRNN's
    benchmark, Li et al. 2018) cut to its first week by T-GCN (Zhao et al. 2019), which filled the missing readings
    (0 mph in METR-LA) by linear interpolation. :func:`straight_runs` finds the filled stretches; their interior
    points, about 4.5 % of all entries (8 % of the test split), are False in ``observed`` and NaN labels in
    :func:`kdlib.traffic_splits`. Graph: DCRNN's directed Gaussian-kernel road-distance adjacency, 207x207,
    1722 non-zeros (self-loops included).

    Attributes:
        speed: ``(2016, 207)`` float32 mph, filled stretches included; column j is sensor ``sensor_ids[j]``.
        timestamps: the 2016 time stamps.
        sensor_ids: the 207 sensor ids, in the column order of ``speed`` and ``adj``.
        locations: ``(207, 2)`` float64 (latitude, longitude).
        adj: ``(207, 207)`` float32, ``adj[i, j]`` weight of edge i -> j.
        filled_runs: ``(R, 3)`` int64 ``(sensor, first, last)``; default :func:`straight_runs` of ``speed``.
        observed: ``(2016, 207)`` bool, False inside a filled run; default :func:`observed_mask`.
    """

    speed: Tensor
    timestamps: pd.DatetimeIndex
    sensor_ids: list[str]
    locations: np.ndarray
    adj: Tensor
    filled_runs: np.ndarray | None = None
    observed: Tensor | None = None

    def __post_init__(self) -> None:
        if self.filled_runs is None:
            object.__setattr__(self, "filled_runs", straight_runs(self.speed))
        if self.observed is None:
            object.__setattr__(self, "observed", observed_mask(tuple(self.speed.shape), self.filled_runs))

    @property
    def num_nodes(self) -> int:
        return self.speed.shape[1]

    @property
    def observed_speed(self) -> Tensor:
        """``speed`` with NaN where not ``observed``: what to fit statistics (e.g. a historical average) on."""
        return self.speed.masked_fill(~self.observed, float("nan"))

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
