"""Where files live: the data, cache and checkpoint folders, and verified downloads.

* data: ``$KDLIB_DATA``, else ``<repository>/data`` in a checkout, else ``~/.cache/kdlib``;
* cache (teacher outputs): ``$KDLIB_CACHE``, else ``<repository>/.cache`` in a checkout,
  else ``~/.cache/kdlib``;
* checkpoints: ``<repository>/checkpoints`` with their ``SHA256SUMS``.

Every file that kdlib reads is checked against a SHA-256 first: :func:`fetch` for
datasets (downloading an absent file when online), :func:`load_checkpoint` for weights.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from pathlib import Path

import torch
from torch import Tensor, nn

__all__: list[str] = ["DATA_ENV", "CACHE_ENV", "CHECKPOINT_DIR", "user_dir", "data_dir", "cache_dir", "sha256sum", "fetch", "missing_file_error",
           "tensor_digest", "save_checkpoint", "load_checkpoint"]

DATA_ENV = "KDLIB_DATA"
CACHE_ENV = "KDLIB_CACHE"


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


def missing_file_error(path: Path, url: str, reason: str) -> FileNotFoundError:
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
            raise missing_file_error(path, url, f"{type(exc).__name__}: {exc}") from exc
    digest = sha256sum(path)
    if digest != sha256:
        raise ValueError(
            f"{path} has sha256 {digest}, expected {sha256}. The file is corrupt or "
            f"not the expected version: delete it and let kdlib download it from {url}."
        )
    return path


def cache_dir() -> Path:
    """``$KDLIB_CACHE`` if set, else ``<repository>/.cache`` in a checkout, else ``~/.cache/kdlib``."""
    return user_dir(CACHE_ENV, ".cache")


def tensor_digest(*tensors: Tensor) -> str:
    """Hex SHA-256 over the dtypes, shapes and bytes of ``tensors`` (in order)."""
    h = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


CHECKPOINT_DIR = Path(__file__).resolve().parents[1] / "checkpoints"
SUMS = "SHA256SUMS"


def _read_sums(folder: Path) -> dict[str, str]:
    f = folder / SUMS
    if not f.exists():
        return {}
    pairs = (line.split() for line in f.read_text().splitlines() if line.strip())
    return {name: digest for digest, name in pairs}


def save_checkpoint(model: nn.Module, name: str, folder: Path = CHECKPOINT_DIR) -> str:
    """Save ``model.state_dict()`` to ``folder/name.pt``, record its hash; return the hash."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.pt"
    torch.save(model.state_dict(), path)
    digest = sha256sum(path)
    sums = _read_sums(folder)
    sums[path.name] = digest
    (folder / SUMS).write_text("".join(f"{d}  {n}\n" for n, d in sorted(sums.items())))
    return digest


def load_checkpoint(model: nn.Module, name: str, folder: Path = CHECKPOINT_DIR) -> nn.Module:
    """Load ``folder/name.pt`` into ``model`` after checking its SHA-256 against ``SHA256SUMS``."""
    path = folder / f"{name}.pt"
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} not found; regenerate it with: python -m kdlib.teachers {name}")
    expected = _read_sums(folder).get(path.name)
    actual = sha256sum(path)
    if expected != actual:
        raise ValueError(
            f"checkpoint {path} has sha256 {actual} but {folder / SUMS} lists {expected}: the file is "
            f"corrupt or stale; regenerate it with: python -m kdlib.teachers {name}"
        )
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()
