"""Ingest service: camera sources to the frames topic."""

from emostream.ingest.runner import Ingest

__all__ = ["Ingest"]
