"""kdlib.plots: entropy against hand-computed values, bar heights against softmax_t, frame_slider's widgets."""

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from kdlib import softmax_t  # noqa: E402
from kdlib.losses import entropy
from kdlib.plots import softmax_bars  # noqa: E402


def test_entropy_by_hand():
    assert entropy(torch.full((4,), 0.25)).item() == pytest.approx(math.log(4))
    assert entropy(torch.tensor([1.0, 0.0, 0.0])).item() == pytest.approx(0.0)
    p = torch.tensor([[0.5, 0.25, 0.25], [0.9, 0.1, 0.0]], dtype=torch.float64)
    expected = [-(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25)), -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))]
    torch.testing.assert_close(entropy(p), torch.tensor(expected, dtype=torch.float64))


def test_entropy_rejects_logits():
    with pytest.raises(ValueError, match="did you pass logits"):
        entropy(torch.tensor([1.0, -2.0]))


def test_softmax_bars_heights_and_title():
    z = torch.tensor([3.0, 1.0, -2.0, 0.5])
    fig, ax = plt.subplots()
    p = softmax_bars(ax, z, T=2.0, highlight=0)
    heights = np.array([bar.get_height() for bar in ax.patches])
    np.testing.assert_allclose(heights, softmax_t(z.double(), 2.0).numpy())
    np.testing.assert_allclose(p.numpy(), heights)
    h = -(p * p.log()).sum().item()
    assert ax.get_title() == f"T = 2,  H = {h:.2f} nats"
    assert ax.patches[0].get_facecolor() != ax.patches[1].get_facecolor()
    plt.close(fig)


def test_softmax_bars_bad_input():
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="expected shape"):
        softmax_bars(ax, torch.zeros(2, 3))
    with pytest.raises(ValueError, match="class names"):
        softmax_bars(ax, torch.zeros(3), class_names=["a", "b"])
    with pytest.raises(ValueError, match="highlight"):
        softmax_bars(ax, torch.zeros(3), highlight=5)
    plt.close(fig)


def test_mean_band_against_numpy():
    from kdlib.plots import mean_band

    runs = np.array([[0.90, 0.92, 0.95], [0.88, 0.93, 0.94], [0.86, 0.91, 0.96]])
    fig, ax = plt.subplots()
    mean, lo, hi = mean_band(ax, [1, 2, 3], runs, label="a")
    np.testing.assert_allclose(mean, [0.88, 0.92, 0.95])
    s = np.sqrt(((runs - mean) ** 2).sum(axis=0) / 2)  # sample std by hand
    np.testing.assert_allclose(hi - mean, s)
    np.testing.assert_allclose(mean - lo, s)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), mean)
    assert ax.lines[0].get_label() == "a" and len(ax.collections) == 1
    # x per run (cumulative seconds): the mean over runs is the x axis; min-max band
    secs = np.array([[1.0, 2.0, 3.0], [3.0, 4.0, 5.0], [2.0, 3.0, 4.0]])
    _, lo, hi = mean_band(ax, secs, runs, band="minmax")
    np.testing.assert_allclose(ax.lines[1].get_xdata(), [2.0, 3.0, 4.0])
    np.testing.assert_allclose(lo, [0.86, 0.91, 0.94])
    np.testing.assert_allclose(hi, [0.90, 0.93, 0.96])
    # one run: no spread
    _, lo, hi = mean_band(ax, [1, 2, 3], runs[:1])
    np.testing.assert_allclose(lo, hi)
    plt.close(fig)


def test_mean_band_bad_input():
    from kdlib.plots import mean_band

    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="band must be one of"):
        mean_band(ax, [1, 2], [[1.0, 2.0]], band="iqr")
    with pytest.raises(ValueError, match="x has shape"):
        mean_band(ax, [1, 2, 3], [[1.0, 2.0]])
    with pytest.raises(ValueError, match="runs must be 2-D"):
        mean_band(ax, [1, 2], [1.0, 2.0])
    plt.close(fig)


def _frames(values):
    frames = []
    for T in values:
        fig, ax = plt.subplots(figsize=(3, 2))
        softmax_bars(ax, torch.tensor([3.0, 1.0, -2.0]), T=T)
        frames.append(fig)
    return frames


def test_frame_slider_frames_link_and_pngs():
    import ipywidgets as widgets
    from ipywidgets.widgets.widget import _instances

    from kdlib.plots import frame_slider

    values = [0.5, 1.0, 4.0]
    frames = _frames(values)
    box = frame_slider(frames, values, description="T", dpi=50)
    slider, stack = box.children
    assert isinstance(stack, widgets.Stack) and len(stack.children) == 3 and stack.selected_index == 0
    assert [lab for lab, _ in slider.options] == ["0.5", "1", "4"] and slider.description == "T"
    pngs = [bytes(img.value) for img in stack.children]
    assert all(isinstance(img, widgets.Image) and img.format == "png" for img in stack.children)
    assert all(p.startswith(b"\x89PNG\r\n\x1a\n") and len(p) < 20_000 for p in pngs)
    assert len(set(pngs)) == 3, "each frame its own picture"
    # the frame switches in the browser: a jslink (a Link model, not a Python observer) slider.index -> stack
    links = [w for w in _instances.values() if isinstance(w, widgets.widget_link.Link) and w.source[0] is slider]
    assert len(links) == 1 and links[0].source[1] == "index" and links[0].target == (stack, "selected_index")
    assert not any(plt.fignum_exists(f.number) for f in frames), "frames are closed (no stray inline figures)"
    # full colour is larger than the quantised default
    full = bytes(frame_slider(_frames([1.0]), [1.0], dpi=50, colors=None).children[1].children[0].value)
    assert len(full) > len(pngs[1])


def test_frame_slider_bad_input():
    from kdlib.plots import frame_slider

    with pytest.raises(ValueError, match="one frame per value"):
        frame_slider(_frames([1.0, 2.0]), [1.0])
    with pytest.raises(ValueError, match="one frame per value"):
        frame_slider([], [])
    plt.close("all")


def test_paired_dots_draws_each_seed_and_interval():
    import pandas as pd

    import kdlib
    from kdlib.plots import paired_dots

    table = pd.DataFrame({"seed": [0, 0, 1, 1, 2, 2], "method": ["a", "b"] * 3,
                          "e1": [5.0, 4.0, 6.0, 5.5, 5.0, 4.5], "e2": [1.0, 1.0, 2.0, 1.0, 3.0, 2.0]})
    cis = {c: kdlib.paired_ci(table, "a", "b", c) for c in ("e1", "e2")}
    fig, ax = plt.subplots()
    paired_dots(ax, {"first": cis["e1"], "second": (cis["e2"], cis["e1"])})  # a second interval per group: grey
    dots = [line for line in ax.lines if line.get_marker() == "o"]
    assert [list(d.get_ydata()) for d in dots] == [[1.0, 0.5, 0.5], [0.0, 1.0, 1.0]]
    assert len(ax.containers) == 3 and ax.containers[0][0].get_ydata()[0] == pytest.approx(cis["e1"].mean)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["first", "second"]
    with pytest.raises(ValueError, match="per-seed differences"):
        paired_dots(ax, {"unpaired": kdlib.welch_ci([1.0, 2.0], [0.0, 1.0])})
    plt.close(fig)
