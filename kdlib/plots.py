"""Reusable figures: an annotated heat map for hyperparameter sweeps."""

from __future__ import annotations

import numpy as np
import pandas as pd


def heatmap(
    values: pd.DataFrame,
    ax=None,
    fmt: str = "{:.0f}",
    cmap: str = "viridis_r",
    colorbar_label: str = "",
    title: str = "",
):
    """Draw ``values`` (rows = y axis, columns = x axis) as a colour grid with each cell's number.

    Row and column labels come from the index and columns (their ``name`` labels the
    axes). Text is white on dark cells and black on light ones. Returns the Axes.
    Typical use: ``heatmap(table.pivot_table(index="alpha", columns="T", values="errors"))``.
    """
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
