"""Project errors, all under `EmostreamError`; `reason` is the dead-letter / metric label.

The command line prints any of them as one line (no traceback): they are the user's input errors.
"""

from __future__ import annotations


class EmostreamError(Exception):
    """Root of every project error."""

    reason: str = "error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class InvalidFrame(EmostreamError):
    """A frame message cannot be processed (bad payload or headers); goes to the dead letters."""

    reason = "invalid_frame"


class ConfigError(EmostreamError):
    """Settings or files the user supplied are wrong; the message says how to fix them."""

    reason = "config"


class DependencyUnavailable(EmostreamError):
    """Kafka or Redis is not reachable."""

    reason = "unavailable"


class CheckpointError(ConfigError, ValueError):
    """A checkpoint file is missing, corrupt or does not match its architecture."""

    reason = "checkpoint"


class DatasetError(ConfigError, ValueError):
    """The dataset file or folder is missing or malformed."""

    reason = "dataset"
