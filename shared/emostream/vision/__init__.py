"""Vision: face detection and the official RMN crop geometry."""

from emostream.vision.crop import crop, official_crop_box
from emostream.vision.detection import Detection, FaceDetector
from emostream.vision.detector import build_detector

__all__ = ["Detection", "FaceDetector", "build_detector", "crop", "official_crop_box"]
