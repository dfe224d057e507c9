"""kdlib.files: verified downloads, the cache folder and checkpoint checks with clear errors."""

import gzip
import hashlib
import urllib.request
from pathlib import Path

import pytest
import torch
from torch import nn

import kdlib
from kdlib.files import cache_dir, fetch, load_checkpoint, save_checkpoint, sha256sum


def test_fetch_decompresses_a_gz_download_and_checks_the_result(tmp_path, monkeypatch):
    payload = b"idx bytes " * 100
    src = tmp_path / "src.gz"
    src.write_bytes(gzip.compress(payload))
    urls = []

    def fake_download(url, target):
        urls.append(url)
        Path(target).write_bytes(src.read_bytes())

    monkeypatch.setattr(urllib.request, "urlretrieve", fake_download)
    path = fetch(tmp_path / "data" / "file-ubyte", "https://example.org/file-ubyte.gz", hashlib.sha256(payload).hexdigest())
    assert path.read_bytes() == payload and urls == ["https://example.org/file-ubyte.gz"]
    assert not list(path.parent.glob("*.part"))


def test_fetch_mismatch_names_file_both_hashes_and_the_fix(tmp_path):
    f = tmp_path / "data.bin"
    f.write_bytes(b"not the file")
    with pytest.raises(ValueError) as err:
        fetch(f, "https://example.org/data.bin", "0" * 64)
    msg = str(err.value)
    assert str(f) in msg and sha256sum(f) in msg and "0" * 64 in msg
    assert "Delete it" in msg and "KDLIB_DATA" in msg


def test_cache_dir_defaults_to_the_user_cache_not_the_checkout(tmp_path, monkeypatch):
    monkeypatch.delenv("KDLIB_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir() == tmp_path / ".cache" / "kdlib" / "outputs"
    monkeypatch.setenv("KDLIB_CACHE", str(tmp_path / "c"))
    assert cache_dir() == (tmp_path / "c").resolve()


def test_checkpoint_folders_may_be_str(tmp_path):
    m = nn.Linear(3, 2)
    digest = save_checkpoint(m, "tiny", folder=str(tmp_path))
    assert (tmp_path / "SHA256SUMS").read_text() == f"{digest}  tiny.pt\n"
    m2 = load_checkpoint(nn.Linear(3, 2).train(), "tiny", folder=str(tmp_path))
    torch.testing.assert_close(m2.weight, m.weight)
    assert not m2.training


def test_checkpoint_without_sums_entry_says_so_and_how_to_fix(tmp_path):
    torch.save(nn.Linear(3, 2).state_dict(), tmp_path / "tiny.pt")
    with pytest.raises(ValueError) as err:
        load_checkpoint(nn.Linear(3, 2), "tiny", folder=tmp_path)
    msg = str(err.value)
    assert "None" not in msg and f"no {tmp_path / 'SHA256SUMS'}" in msg and "save_checkpoint" in msg
    save_checkpoint(nn.Linear(3, 2), "other", folder=tmp_path)  # SHA256SUMS now exists, without tiny.pt
    with pytest.raises(ValueError, match="does not list tiny.pt") as err:
        load_checkpoint(nn.Linear(3, 2), "tiny", folder=tmp_path)
    assert "None" not in str(err.value)


def test_regenerate_advice_only_when_given(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_checkpoint(nn.Linear(3, 2), "absent", folder=tmp_path)
    assert "python -m kdlib.teachers" not in str(err.value) and "save_checkpoint" in str(err.value)
    save_checkpoint(nn.Linear(3, 2), "tiny", folder=tmp_path)
    (tmp_path / "tiny.pt").write_bytes(b"corrupt")
    with pytest.raises(ValueError, match="corrupt or stale; regenerate it with: make tiny"):
        load_checkpoint(nn.Linear(3, 2), "tiny", folder=tmp_path, how_to_regenerate="make tiny")


def test_load_teacher_advises_the_recipe_and_rejects_unknown_names(tmp_path):
    with pytest.raises(ValueError) as err:
        kdlib.load_teacher("resnet-teacher")
    assert "mnist-teacher" in str(err.value) and "metr-la-teacher" in str(err.value)
    with pytest.raises(FileNotFoundError, match="python -m kdlib.teachers mnist-teacher"):
        kdlib.load_teacher("mnist-teacher", folder=tmp_path)
    # a tampered copy of the shipped checkpoint is refused, with the regenerate command
    (tmp_path / "mnist-teacher.pt").write_bytes((kdlib.files.CHECKPOINT_DIR / "mnist-teacher.pt").read_bytes()[:-1])
    (tmp_path / "SHA256SUMS").write_text((kdlib.files.CHECKPOINT_DIR / "SHA256SUMS").read_text())
    with pytest.raises(ValueError, match="corrupt or stale; regenerate it with: python -m kdlib.teachers mnist-teacher"):
        kdlib.load_teacher("mnist-teacher", folder=tmp_path)
