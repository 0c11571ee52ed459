"""Project errors. Each carries what the error hook needs to decide: dead-letter or retry."""

from __future__ import annotations


class EmostreamError(Exception):
    """Root of every project error."""

    retriable: bool = False
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
    """Kafka or Redis is not reachable; retried with backoff."""

    retriable = True
    reason = "unavailable"
