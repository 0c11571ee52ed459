"""Downloads from the Hugging Face hub into a local cache, with checksums and an offline path."""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from emostream.errors import EmostreamError

HF_BASE_URL = "https://huggingface.co"
HF_REPO = "phamquiluan/ResidualMaskingNetwork"


@dataclass(frozen=True)
class HubFile:
    filename: str
    description: str
    sha256: str | None = None  # None: trust on first download, then pinned in <file>.sha256


OFFICIAL_FILES = (
    HubFile("Z_resmasking_dropout1_rot30_2019Nov30_13.32", "official RMN-34 checkpoint (74.14%)"),
    HubFile("face_detection_yunet_2023mar.onnx", "YuNet face detector"),
)


class HubUnavailable(EmostreamError):
    """The hub cannot be reached (offline machine, firewall) or a download failed."""

    reason = "hub_unavailable"


class ChecksumMismatch(EmostreamError):
    reason = "checksum"


DEFAULT_CACHE_DIR = Path.home() / ".cache" / "emostream"
# Set by the application (the CLI reads EMOSTREAM_CACHE_DIR); the library reads no environment.
_cache_dir: Path | None = None


def set_cache_dir(path: str | os.PathLike | None) -> None:
    """Make ``path`` the default model cache (None: back to ``DEFAULT_CACHE_DIR``).

    Args:
        path: The directory ``cache_dir()`` returns when it is given none.
    """
    global _cache_dir
    _cache_dir = Path(path) if path else None


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """The model cache: ``override``, else the one set with ``set_cache_dir``, else the default.

    Args:
        override: A directory that wins over the configured one.

    Returns:
        The directory (it may not exist yet).
    """
    return Path(override or _cache_dir or DEFAULT_CACHE_DIR)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _verify(path: Path, expected: str | None) -> str:
    digest = sha256_of(path)
    pin = path.with_name(path.name + ".sha256")
    expected = expected or (pin.read_text().strip() if pin.exists() else None)
    if expected and digest != expected:
        raise ChecksumMismatch(
            f"{path}: sha256 {digest} != expected {expected}; delete it and pull again"
        )
    pin.write_text(digest + "\n")
    return digest


def pull(
    files: tuple[HubFile, ...] = OFFICIAL_FILES,
    cache: str | os.PathLike | None = None,
    base_url: str | None = None,
    timeout_s: float = 10.0,
) -> dict[str, Path]:
    """Fetch ``files`` into the cache (skipping those present and verified); return their paths.

    Args:
        files: What to fetch.
        cache: The directory (default: ``cache_dir()``).
        base_url: A mirror of the hub (default: ``HF_BASE_URL``).
        timeout_s: Per connection attempt.

    Raises:
        HubUnavailable: with the exact files and directory to place by hand when offline.
    """
    target = cache_dir(cache)
    target.mkdir(parents=True, exist_ok=True)
    base = (base_url or HF_BASE_URL).rstrip("/")
    out: dict[str, Path] = {}
    for f in files:
        dest = target / f.filename
        if dest.exists():
            _verify(dest, f.sha256)
            out[f.filename] = dest
            continue
        url = f"{base}/{HF_REPO}/resolve/main/{f.filename}"
        tmp = dest.with_name(dest.name + ".part")
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as resp, tmp.open("wb") as fh:
                shutil.copyfileobj(resp, fh)
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            tmp.unlink(missing_ok=True)
            names = "\n".join(f"  {target / x.filename}   ({x.description})" for x in files)
            raise HubUnavailable(
                f"cannot download {url}: {exc}.\nOffline? Download these files from "
                f"https://huggingface.co/{HF_REPO} on a connected machine and place them at:"
                f"\n{names}"
            ) from exc
        tmp.replace(dest)
        try:
            _verify(dest, f.sha256)
        except ChecksumMismatch:
            dest.unlink(missing_ok=True)
            raise
        out[f.filename] = dest
    return out
