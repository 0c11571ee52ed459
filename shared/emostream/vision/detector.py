"""Face detectors: OpenCV's Haar cascade (shipped with opencv), YuNet (ONNX, given a file), and
YuNet in PyTorch with packaged weights (``yunet_torch``, in ``emostream.vision.yunet_torch``)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from emostream.errors import ConfigError
from emostream.vision.detection import Detection, FaceDetector, yunet_rows_to_detections


class HaarDetector:
    """Viola-Jones frontal-face cascade; score is a squashed neighbour count in [0, 1]."""

    name = "haar"

    def __init__(self, min_face_px: int = 32, max_faces: int = 16) -> None:
        # OpenCV's stubs leave out the cv2.data module that the wheels ship.
        data_dir = cv2.data.haarcascades  # type: ignore[attr-defined]
        path = Path(data_dir) / "haarcascade_frontalface_default.xml"
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise ConfigError(
                f"cannot load the Haar cascade at {path}; install opencv-python-headless 4.x "
                "(5.x has no CascadeClassifier) or use detector kind 'yunet'"
            )
        self.min_face_px = min_face_px
        self.max_faces = max_faces

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        gray = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY) if image_bgr.ndim == 3 else image_bgr
        boxes, _, weights = self._cascade.detectMultiScale3(
            gray,
            scaleFactor=1.1,
            minNeighbors=5,
            minSize=(self.min_face_px, self.min_face_px),
            outputRejectLevels=True,
        )
        found = []
        for (x, y, w, h), weight in zip(boxes, np.asarray(weights).reshape(-1)):
            score = float(1.0 / (1.0 + np.exp(-float(weight))))
            found.append(Detection(int(x), int(y), int(w), int(h), score))
        found.sort(key=lambda d: d.w * d.h, reverse=True)
        return found[: self.max_faces]


class YuNetDetector:
    """OpenCV's YuNet CNN detector (``cv2.FaceDetectorYN``), the official RMN package's choice."""

    name = "yunet"

    def __init__(
        self,
        model_path: str | Path,
        score_threshold: float = 0.7,
        min_face_px: int = 32,
        max_faces: int = 16,
    ) -> None:
        model_path = Path(model_path)
        if not model_path.is_file():
            raise ConfigError(
                f"YuNet model not found at {model_path}; run `emostream models pull` or place "
                "face_detection_yunet_2023mar.onnx there by hand"
            )
        self._net = cv2.FaceDetectorYN.create(
            str(model_path), "", (320, 320), score_threshold, 0.3, 5000
        )
        self.min_face_px = min_face_px
        self.max_faces = max_faces

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        if image_bgr.ndim == 2:
            image_bgr = cv2.cvtColor(image_bgr, cv2.COLOR_GRAY2BGR)
        h, w = image_bgr.shape[:2]
        self._net.setInputSize((w, h))
        _, faces = self._net.detect(image_bgr)
        rows = faces if faces is not None else []
        return yunet_rows_to_detections(rows, w, h, self.min_face_px, self.max_faces)


class DownscaledDetector:
    """Runs a detector on a copy no wider than ``max_width_px`` and maps boxes back.

    Detection cost grows with pixels; faces worth classifying stay detectable at ~480 px wide.
    ``min_face_px`` is enforced in original-frame pixels.
    """

    def __init__(self, inner, max_width_px: int, min_face_px: int) -> None:
        self.inner = inner
        self.name = inner.name
        self.max_width_px = max_width_px
        self.min_face_px = min_face_px

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        h, w = image_bgr.shape[:2]
        scale = max(w / self.max_width_px, 1.0)
        small = (
            image_bgr
            if scale == 1.0
            else cv2.resize(
                image_bgr, (self.max_width_px, int(round(h / scale))), interpolation=cv2.INTER_AREA
            )
        )
        out = []
        for d in self.inner.detect(small):
            x, y = int(d.x * scale), int(d.y * scale)
            bw, bh = min(int(d.w * scale), w - x), min(int(d.h * scale), h - y)
            if min(bw, bh) >= self.min_face_px:
                out.append(Detection(x, y, bw, bh, d.score))
        return out


def build_detector(
    kind: str,
    yunet_model: str | None = None,
    max_width_px: int | None = None,
    min_face_px: int = 32,
    runtime: str = "torch",
    **kwargs,
) -> FaceDetector:
    """A detector by kind; ``max_width_px`` downscales wide frames before detection.

    ``yunet_torch`` needs no model file (weights ship in the package); ``yunet_model`` is ignored.
    ``runtime`` (``emostream.onnx_cpu``) applies to ``yunet_torch`` only.
    """
    if kind == "haar":
        kwargs.pop("score_threshold", None)

        def make(min_px: int) -> FaceDetector:
            return HaarDetector(min_face_px=min_px, **kwargs)
    elif kind == "yunet":
        if yunet_model is None:
            from emostream.models.hub import cache_dir

            yunet_model = str(cache_dir() / "face_detection_yunet_2023mar.onnx")

        def make(min_px: int) -> FaceDetector:
            return YuNetDetector(yunet_model, min_face_px=min_px, **kwargs)
    elif kind == "yunet_torch":
        from emostream.vision.yunet_torch import TorchYuNetDetector  # torch import only when asked

        def make(min_px: int) -> FaceDetector:
            return TorchYuNetDetector(min_face_px=min_px, runtime=runtime, **kwargs)
    else:
        raise ConfigError(f"unknown detector kind {kind!r}; use 'haar', 'yunet' or 'yunet_torch'")
    if not max_width_px:
        return make(min_face_px)
    # The inner detector sees a smaller image: let it report faces down to 16 px there.
    return DownscaledDetector(make(min(16, min_face_px)), max_width_px, min_face_px)
