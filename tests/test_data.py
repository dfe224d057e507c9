"""Loaders return the documented content; windows and splits leak nothing; errors are clear."""

import urllib.request

import pytest
import torch

import kdlib
from kdlib.preprocessing import chronological_split, sliding_windows, traffic_splits


def test_mnist_content(mnist):
    assert mnist.x_train.shape == (55000, 1, 28, 28)
    assert mnist.x_val.shape == (kdlib.MNIST_VAL_SIZE, 1, 28, 28) == (5000, 1, 28, 28)
    assert mnist.y_val.shape == (5000,)
    assert mnist.x_test.shape == (10000, 1, 28, 28)
    # the validation split is the last 5,000 images of the training file, disjoint from training
    assert mnist.y_val[-3:].tolist() == [5, 6, 8]
    assert mnist.x_train.dtype == torch.float32
    assert mnist.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert mnist.mean == pytest.approx(0.1307, abs=1e-3)
    assert mnist.std == pytest.approx(0.3081, abs=1e-3)
    # normalised with training statistics: train mean 0 / std 1, test close but not exact
    assert mnist.x_train.mean().item() == pytest.approx(0.0, abs=1e-4)
    assert mnist.x_train.std().item() == pytest.approx(1.0, abs=1e-4)
    assert torch.bincount(mnist.y_test).tolist()[:3] == [980, 1135, 1032]


def test_metr_la_content(metr):
    assert metr.speed.shape == (2016, 207)
    assert metr.speed[0, :3].tolist() == [64.375, 67.625, 67.125]
    assert str(metr.timestamps[0]) == "2012-03-01 00:00:00"
    assert str(metr.timestamps[-1]) == "2012-03-07 23:55:00"
    assert len(metr.sensor_ids) == 207 and metr.sensor_ids[0] == "773869"
    assert metr.locations.shape == (207, 2)
    assert metr.locations[0].tolist() == pytest.approx([34.15497, -118.31829])
    assert metr.adj.shape == (207, 207) and int((metr.adj > 0).sum()) == 1722
    assert metr.step_of_day[:2].tolist() == [0, 1] and metr.step_of_day[288].item() == 0
    assert metr.speed.min().item() >= 1 and metr.speed.max().item() <= 70


def test_metr_la_filled_stretches(metr):
    # the detector's output on the real file: documented facts (kdlib.data.MetrLAWeek)
    assert metr.observed.shape == metr.speed.shape and metr.observed.dtype == torch.bool
    runs = metr.filled_runs
    lengths = runs[:, 2] - runs[:, 1] + 1
    assert len(runs) == 2846 and lengths.max() == 315 and (lengths >= 4).sum() == 2639
    missing = (~metr.observed).float()
    assert missing.mean().item() == pytest.approx(0.0449, abs=5e-4)
    assert missing[1612:].mean().item() == pytest.approx(0.0805, abs=5e-4)
    # interior points only: every run's two end points stay observed
    assert metr.observed[runs[:, 1], runs[:, 0]].all() and metr.observed[runs[:, 2], runs[:, 0]].all()


def test_chronological_split_covers_everything_in_order():
    parts = chronological_split(2016)
    assert parts["train"] == range(0, 1411)
    assert parts["val"] == range(1411, 1612)
    assert parts["test"] == range(1612, 2016)
    with pytest.raises(ValueError, match="summing to 1"):
        chronological_split(100, (0.5, 0.5, 0.5))


def test_sliding_windows_by_hand():
    s = torch.arange(10.0)[:, None]
    x, y = sliding_windows(s, in_steps=3, out_steps=2)
    assert x.shape == (6, 3, 1) and y.shape == (6, 2, 1)
    assert x[0, :, 0].tolist() == [0, 1, 2] and y[0, :, 0].tolist() == [3, 4]
    assert x[-1, :, 0].tolist() == [5, 6, 7] and y[-1, :, 0].tolist() == [8, 9]
    with pytest.raises(ValueError, match="too short"):
        sliding_windows(s, 8, 8)


def test_no_window_crosses_a_split_and_scaler_uses_train_only(metr):
    splits, scaler = traffic_splits(metr)
    parts = chronological_split(2016)
    assert {k: len(v) for k, v in splits.items()} == {"train": 1388, "val": 178, "test": 381}
    for name, w in splits.items():
        first, last = w.start.min().item(), w.start.max().item() + 24 - 1
        assert parts[name].start <= first and last < parts[name].stop, name
        # content: targets are the raw speeds right after the inputs
        i = len(w) // 2
        s = w.start[i].item()
        torch.testing.assert_close(w.y_unmasked[i], metr.speed[s + 12 : s + 24])
        # labels: the raw speeds wherever they are not NaN; NaN at least on every filled entry
        ok = ~torch.isnan(w.y)
        assert torch.equal(w.y[ok], w.y_unmasked[ok])
        filled = ~sliding_windows(metr.observed[parts[name].start : parts[name].stop], 12, 12)[1]
        assert torch.isnan(w.y[filled]).all() and torch.isfinite(w.x).all()
        torch.testing.assert_close(scaler.inverse_transform(w.x[i]), metr.speed[s : s + 12])
        assert w.tod[i].item() == (s + 11) % 288
    train = metr.speed[:1411]
    assert scaler.mean.item() == pytest.approx(train.mean().item(), rel=1e-6)
    assert scaler.std.item() == pytest.approx(train.std().item(), rel=1e-6)
    assert scaler.mean.item() != pytest.approx(metr.speed.mean().item(), rel=1e-4)


def test_scaler_roundtrip_and_unfitted_error():
    x = torch.randn(50, 4) * 3 + 7
    sc = kdlib.StandardScaler(axis=0).fit(x)
    torch.testing.assert_close(sc.inverse_transform(sc.transform(x)), x)
    torch.testing.assert_close(sc.transform(x).mean(0), torch.zeros(4), atol=1e-5, rtol=0)
    with pytest.raises(RuntimeError, match="not fitted"):
        kdlib.StandardScaler().transform(x)


def _offline(monkeypatch):
    def refuse(*args, **kwargs):
        raise urllib.error.URLError("offline (test)")

    monkeypatch.setattr(urllib.request, "urlretrieve", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def test_missing_metr_la_names_file_url_and_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLIB_DATA", str(tmp_path))
    _offline(monkeypatch)
    with pytest.raises(FileNotFoundError) as err:
        kdlib.load_metr_la_week()
    msg = str(err.value)
    assert "los_speed.csv" in msg and "https://raw.githubusercontent.com/" in msg and "KDLIB_DATA" in msg


def test_missing_mnist_names_file_url_and_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLIB_DATA", str(tmp_path))
    _offline(monkeypatch)
    with pytest.raises(FileNotFoundError) as err:
        kdlib.load_mnist()
    msg = str(err.value)
    assert "train-images-idx3-ubyte" in msg and "https://" in msg and "KDLIB_DATA" in msg


def test_corrupt_file_is_rejected(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLIB_DATA", str(tmp_path))
    f = tmp_path / "metr-la-week" / "graph_sensor_ids.txt"
    f.parent.mkdir()
    f.write_text("not the file")
    with pytest.raises(ValueError, match="sha256"):
        kdlib.data.metr_la_file("graph_sensor_ids.txt")


def _mnist_copy(root):
    """A writable copy of the four raw MNIST files under ``root/MNIST/raw`` (the originals are read-only)."""
    src = kdlib.files.data_dir() / "MNIST" / "raw"
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in kdlib.data.MNIST_FILES:
        (raw / name).write_bytes((src / name).read_bytes())
    return raw


def test_mnist_files_are_checked_against_their_sha256(tmp_path, monkeypatch):
    raw = _mnist_copy(tmp_path)
    monkeypatch.setenv("KDLIB_DATA", str(tmp_path))
    f = raw / "train-images-idx3-ubyte"
    data = bytearray(f.read_bytes())
    data[16 : 16 + 100 * 784] = bytes(255 - b for b in data[16 : 16 + 100 * 784])  # 100 inverted images
    f.write_bytes(bytes(data))
    with pytest.raises(ValueError) as err:
        kdlib.load_mnist()
    msg = str(err.value)
    assert str(f) in msg and kdlib.files.sha256sum(f) in msg and kdlib.data.MNIST_FILES[f.name] in msg
    assert "KDLIB_DATA" in msg


def test_truncated_mnist_label_file_is_named(tmp_path, monkeypatch):
    raw = _mnist_copy(tmp_path)
    monkeypatch.setenv("KDLIB_DATA", str(tmp_path))
    f = raw / "t10k-labels-idx1-ubyte"
    f.write_bytes(f.read_bytes()[:5000])
    with pytest.raises(ValueError) as err:
        kdlib.load_mnist()
    msg = str(err.value)
    assert "t10k-labels-idx1-ubyte" in msg and "train-images" not in msg and "missing" not in msg


def test_absent_mnist_file_is_downloaded_as_gz_and_verified(tmp_path, monkeypatch):
    import gzip

    raw = _mnist_copy(tmp_path)
    monkeypatch.setenv("KDLIB_DATA", str(tmp_path))
    original = (raw / "t10k-labels-idx1-ubyte").read_bytes()
    (raw / "t10k-labels-idx1-ubyte").unlink()
    urls = []

    def fake_download(url, target):
        urls.append(url)
        open(target, "wb").write(gzip.compress(original))

    monkeypatch.setattr(urllib.request, "urlretrieve", fake_download)
    try:
        data = kdlib.load_mnist()
        assert urls == ["https://ossci-datasets.s3.amazonaws.com/mnist/t10k-labels-idx1-ubyte.gz"]
        assert (raw / "t10k-labels-idx1-ubyte").read_bytes() == original
        assert torch.bincount(data.y_test).tolist()[:3] == [980, 1135, 1032]
    finally:
        kdlib.data._mnist_cached.cache_clear()  # drop this copy (~220 MB)
