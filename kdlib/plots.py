"""Small reusable figures for the book (matplotlib), imported as ``kdlib.plots`` (``import kdlib`` skips it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from .experiments import PairedCI
from .losses import entropy, softmax_t

if TYPE_CHECKING:
    import ipywidgets
    from matplotlib.figure import Figure

__all__: list[str] = ["softmax_bars", "heatmap", "mean_band", "paired_dots", "frame_slider"]


def softmax_bars(
    ax,
    logits: Tensor,
    T: float = 1.0,
    class_names: Sequence[str] | None = None,
    highlight: int | None = None,
    log_scale: bool = False,
    color: str = "tab:blue",
    highlight_color: str = "tab:orange",
) -> Tensor:
    r"""Bar chart of :math:`p = \mathrm{softmax}(z / T)` for one logit vector ``z`` on ``ax``; returns ``p`` (1-D).

    The title shows ``T`` and the entropy :math:`H(p)` in nats; bar ``highlight`` (e.g. the true class) gets
    ``highlight_color``; ``log_scale=True`` shows the tiny "dark knowledge" probabilities.
    """
    logits = torch.as_tensor(logits, dtype=torch.float64)
    if logits.dim() != 1:
        raise ValueError(f"softmax_bars draws one logit vector: expected shape (N,), got {tuple(logits.shape)}; "
                         "pick one row, e.g. logits[0]")
    n = logits.shape[0]
    names = [str(i) for i in range(n)] if class_names is None else [str(c) for c in class_names]
    if len(names) != n:
        raise ValueError(f"{len(names)} class names for {n} logits; give one name per class")
    if highlight is not None and not 0 <= highlight < n:
        raise ValueError(f"highlight must be a class index in [0, {n}), got {highlight}")
    p = softmax_t(logits, T)
    colors = [highlight_color if i == highlight else color for i in range(n)]
    ax.bar(range(n), p.numpy(), color=colors)
    ax.set_xticks(range(n), names)
    if log_scale:
        ax.set_yscale("log")
        ax.set_ylim(max(p.min().item() / 2, 1e-12), 1.5)
    else:
        ax.set_ylim(0, 1)
    ax.set_title(f"T = {T:g},  H = {entropy(p).item():.2f} nats")
    ax.set_xlabel("class")
    ax.set_ylabel("probability")
    return p


def heatmap(
    values: pd.DataFrame,
    ax=None,
    fmt: str = "{:.0f}",
    cmap: str = "viridis_r",
    colorbar_label: str = "",
    title: str = "",
):
    """Draw ``values`` (rows = y axis, columns = x axis, axis labels their ``name``) as a colour grid with each
    cell's number; return the Axes. E.g. ``heatmap(table.pivot_table(index="alpha", columns="T", values="errors"))``."""
    import matplotlib.pyplot as plt

    if values.empty:
        raise ValueError("values is empty: nothing to draw")
    data = values.to_numpy(dtype=float)
    if ax is None:
        _, ax = plt.subplots(figsize=(1.0 + 0.9 * data.shape[1], 0.8 + 0.6 * data.shape[0]))
    im = ax.imshow(data, cmap=cmap, aspect="auto")
    ax.set_xticks(range(data.shape[1]), [str(c) for c in values.columns])
    ax.set_yticks(range(data.shape[0]), [str(i) for i in values.index])
    ax.set_xlabel(str(values.columns.name or ""))
    ax.set_ylabel(str(values.index.name or ""))
    finite = data[np.isfinite(data)]
    lo, hi = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
    cm = plt.get_cmap(cmap)
    for (r, c), v in np.ndenumerate(data):
        if not np.isfinite(v):
            continue
        shade = cm((v - lo) / (hi - lo) if hi > lo else 0.5)
        luminance = 0.299 * shade[0] + 0.587 * shade[1] + 0.114 * shade[2]
        ax.text(c, r, fmt.format(v), ha="center", va="center", color="black" if luminance > 0.5 else "white")
    ax.figure.colorbar(im, ax=ax, label=colorbar_label)
    if title:
        ax.set_title(title)
    return ax


def mean_band(
    ax,
    x,
    runs,
    label: str = "",
    band: str = "std",
    color: str | None = None,
    alpha: float = 0.25,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Plot the mean of ``runs`` (a row per seed, a column per point of ``x``) as a line, their spread as a band.

    ``band="std"`` shades :math:`\bar y \pm s` (``ddof=1``, zero for one run), ``"minmax"`` lowest to highest run.
    ``x``: 1-D, or of ``runs``' shape (its mean over runs is used). Returns numpy ``(mean, low, high)``.
    """
    y = np.asarray(runs, dtype=float)
    if y.ndim != 2 or y.shape[0] < 1 or y.shape[1] < 1:
        raise ValueError(f"runs must be 2-D (runs x points) with at least one of each, got shape {y.shape}")
    xs = np.asarray(x, dtype=float)
    if xs.shape == y.shape:
        xs = xs.mean(axis=0)
    if xs.shape != (y.shape[1],):
        raise ValueError(f"x has shape {np.asarray(x).shape}; expected ({y.shape[1]},) or {y.shape} to match runs")
    if band not in ("std", "minmax"):
        raise ValueError(f"band must be one of ['minmax', 'std'], got {band!r}")
    mean = y.mean(axis=0)
    if band == "minmax":
        low, high = y.min(axis=0), y.max(axis=0)
    else:
        s = y.std(axis=0, ddof=1) if y.shape[0] > 1 else np.zeros_like(mean)
        low, high = mean - s, mean + s
    (line,) = ax.plot(xs, mean, label=label, color=color)
    ax.fill_between(xs, low, high, color=line.get_color(), alpha=alpha, linewidth=0)
    return mean, low, high


def paired_dots(ax, cis: dict[str, PairedCI | Sequence[PairedCI]]) -> None:
    """Paired comparisons, one group per key of ``cis`` (its tick label): the first :class:`~kdlib.PairedCI`'s
    per-seed differences as dots, beside each interval's mean and CI as square and bar (black, then grey)."""
    for i, group in enumerate(cis.values()):
        group = [group] if isinstance(group, PairedCI) else list(group)
        d = group[0].differences
        if not d:
            raise ValueError("the first interval of each group needs its per-seed differences: make it with paired_ci")
        ax.plot(i + np.linspace(-0.15, 0.15, len(d)), d, "o", color="C0", alpha=0.6, ms=4)
        for j, ci in enumerate(group):
            ax.errorbar(i + 0.3 + 0.12 * j, ci.mean, yerr=[[ci.mean - ci.low], [ci.high - ci.mean]], fmt="s",
                        color="black" if j == 0 else "0.6", capsize=4)
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set_xticks(range(len(cis)), list(cis))


def _png(fig, dpi: int, colors: int | None) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)  # Agg, whatever the notebook's backend
    if colors is None:
        return buf.getvalue()
    buf.seek(0)
    out = io.BytesIO()
    Image.open(buf).convert("RGB").quantize(colors=colors).save(out, format="png", optimize=True)
    return out.getvalue()


def frame_slider(frames: Sequence[Figure], values: Sequence[float], description: str = "", fmt: str = "{:g}",
                 dpi: int = 80, colors: int | None = 64) -> ipywidgets.VBox:
    """An interactive figure without a kernel: a slider switching between pre-drawn ``frames``, one per ``values``.

    Each figure (all of one size) becomes a PNG (``dpi``, quantised to ``colors``; None: full colour) in an ipywidgets
    ``Stack`` ``jslink``-ed to a ``SelectionSlider``, so the saved widget state carries the figure. Cost per frame:
    ~7 kB (a 9 x 3 inch bar chart at the defaults) plus ~2 kB of widget state. Returns ``VBox(slider, stack)``.
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    if len(frames) != len(values) or not frames:
        raise ValueError(f"need one frame per value and at least one: {len(frames)} frames, {len(values)} values")
    images = []
    for fig in frames:
        images.append(widgets.Image(value=_png(fig, dpi, colors), format="png"))
        plt.close(fig)
    stack = widgets.Stack(images, selected_index=0)
    slider = widgets.SelectionSlider(options=[(fmt.format(v), i) for i, v in enumerate(values)], value=0,
                                     description=description, layout=widgets.Layout(width="420px"))
    widgets.jslink((slider, "index"), (stack, "selected_index"))
    return widgets.VBox([slider, stack])
