"""Where models are cached and pulled from: typed settings the CLI hands to the library."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ModelCacheSettings(BaseSettings):
    """The model cache and hub mirror, for every command that loads models (not the services'
    sections: the library itself reads no environment)."""

    model_config = SettingsConfigDict(env_prefix="EMOSTREAM_", extra="ignore")
    cache_dir: Path | None = Field(None, description="Model cache (unset: ~/.cache/emostream)")
    hub_url: str | None = Field(None, description="Hub mirror (unset: the hub itself)")

    @field_validator("cache_dir", "hub_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return value or None  # ``EMOSTREAM_CACHE_DIR=`` means the default, not "."


def configure_model_cache() -> None:
    """Point the library's model cache at ``EMOSTREAM_CACHE_DIR`` (unset: the default)."""
    from emostream.models.hub import set_cache_dir  # imports torch: only for commands with models

    set_cache_dir(ModelCacheSettings().cache_dir)


def hub_url(flag: str | None) -> str | None:
    """The ``--hub-url`` flag, else ``EMOSTREAM_HUB_URL``, else None (the hub itself)."""
    return flag or ModelCacheSettings().hub_url
