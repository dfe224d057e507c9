"""Where files live: the data, cache and checkpoint folders, and verified downloads.

* data: ``$KDLIB_DATA``, else ``<repository>/data`` in a checkout, else ``~/.cache/kdlib``;
* cache (teacher outputs): ``$KDLIB_CACHE``, else ``~/.cache/kdlib/outputs``, never in the checkout (delete to drop);
* checkpoints: ``<repository>/checkpoints`` with their ``SHA256SUMS``.

Every file kdlib reads is SHA-256-checked first: :func:`fetch` for datasets, :func:`load_checkpoint` for weights.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import urllib.request
from pathlib import Path

import torch
from torch import Tensor, nn

__all__: list[str] = ["DATA_ENV", "CACHE_ENV", "CHECKPOINT_DIR", "user_dir", "data_dir", "cache_dir", "sha256sum",
                      "fetch", "missing_file_error", "tensor_digest", "save_checkpoint", "load_checkpoint"]

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


def fetch(path: str | os.PathLike, url: str, sha256: str) -> Path:
    """Return ``path`` after checking its SHA-256, downloading it first if absent (a ``.gz`` ``url`` is decompressed;
    ``sha256`` is that of ``path``). Raises FileNotFoundError if the download fails, ValueError on a wrong checksum."""
    path = Path(path)
    if not path.exists():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + ".part")
            urllib.request.urlretrieve(url, tmp)  # noqa: S310 - fixed https URLs
            if url.endswith(".gz"):
                tmp.write_bytes(gzip.decompress(tmp.read_bytes()))
            tmp.replace(path)
        except Exception as exc:  # offline, read-only folder, HTTP error, ...
            raise missing_file_error(path, url, f"{type(exc).__name__}: {exc}") from exc
    digest = sha256sum(path)
    if digest != sha256:
        raise ValueError(
            f"{path} has sha256 {digest}, expected {sha256}: the file is corrupt or not the "
            f"expected version. Delete it and let kdlib download it again from {url}, or set "
            f"{DATA_ENV} to a folder that holds verified copies."
        )
    return path


def cache_dir() -> Path:
    """``$KDLIB_CACHE`` if set, else ``~/.cache/kdlib/outputs``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser().resolve() if env else Path.home() / ".cache" / "kdlib" / "outputs"


def tensor_digest(*tensors: Tensor) -> str:
    """Hex SHA-256 over the dtypes, shapes and bytes of ``tensors`` (in order)."""
    h = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")  # 0-d too
    return h.hexdigest()


CHECKPOINT_DIR = Path(__file__).resolve().parents[1] / "checkpoints"
SUMS = "SHA256SUMS"


def _read_sums(folder: Path) -> dict[str, str]:
    f = folder / SUMS
    if not f.exists():
        return {}
    pairs = (line.split() for line in f.read_text().splitlines() if line.strip())
    return {name: digest for digest, name in pairs}


def save_checkpoint(model: nn.Module, name: str, folder: str | os.PathLike = CHECKPOINT_DIR) -> str:
    """Save ``model.state_dict()`` to ``folder/name.pt``, record its hash in ``folder/SHA256SUMS``; return the hash."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.pt"
    torch.save(model.state_dict(), path)
    digest = sha256sum(path)
    sums = _read_sums(folder)
    sums[path.name] = digest
    (folder / SUMS).write_text("".join(f"{d}  {n}\n" for n, d in sorted(sums.items())))
    return digest


def load_checkpoint(model: nn.Module, name: str, folder: str | os.PathLike = CHECKPOINT_DIR,
                    how_to_regenerate: str | None = None) -> nn.Module:
    """Load ``folder/name.pt`` into ``model`` (eval mode) after checking its SHA-256 against ``SHA256SUMS``; errors
    quote ``how_to_regenerate`` (a command that rebuilds the file), else :func:`save_checkpoint`, as the fix."""
    folder = Path(folder)
    path, sums = folder / f"{name}.pt", folder / SUMS
    fix = (f"regenerate it with: {how_to_regenerate}" if how_to_regenerate else
           f"save it with kdlib.save_checkpoint(model, {name!r}, {str(folder)!r}), which records its hash in {SUMS}")
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} not found; {fix}")
    expected = _read_sums(folder).get(path.name)
    if expected is None:
        raise ValueError(f"cannot verify checkpoint {path}: " + (f"{sums} does not list {path.name}" if sums.exists()
                         else f"there is no {sums}") + f"; {fix}")
    actual = sha256sum(path)
    if expected != actual:
        raise ValueError(f"checkpoint {path} has sha256 {actual} but {sums} lists {expected}: "
                         f"the file is corrupt or stale; {fix}")
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()
