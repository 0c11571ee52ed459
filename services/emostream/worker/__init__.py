"""Worker service: frames to emotion events."""

from emostream.worker.processing import FrameProcessor
from emostream.worker.runner import Worker

__all__ = ["FrameProcessor", "Worker"]
