"""Ingest service: camera sources to the frames topic."""

from emostream.services.ingest.runner import Ingest

__all__ = ["Ingest"]
