"""Worker service: frames to emotion events."""

from emostream.services.worker.processing import FrameProcessor
from emostream.services.worker.runner import Worker

__all__ = ["FrameProcessor", "Worker"]
