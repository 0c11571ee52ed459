"""Face tracking across frames and temporal smoothing of emotions."""

from emostream.tracking.smoother import UNCERTAIN, EmotionSmoother, Smoothed
from emostream.tracking.tracker import IoUTracker, iou

__all__ = ["UNCERTAIN", "EmotionSmoother", "IoUTracker", "Smoothed", "iou"]
