"""Where models are cached and pulled from: environment variables read for the library."""

from __future__ import annotations

import os


def configure_model_cache() -> None:
    """Point the library's model cache at ``EMOSTREAM_CACHE_DIR`` (unset: the default)."""
    from emostream.models.hub import set_cache_dir  # imports torch: only for commands with models

    set_cache_dir(os.environ.get("EMOSTREAM_CACHE_DIR"))


def hub_url(flag: str | None) -> str | None:
    """The ``--hub-url`` flag, else ``EMOSTREAM_HUB_URL``, else None (the hub itself)."""
    return flag or os.environ.get("EMOSTREAM_HUB_URL")
