"""Track-guided detection: search small regions around known faces instead of the whole frame.

A full-frame scan costs the same whether or not the faces moved. Between full scans (which still
find new faces), the worker looks only around each track's predicted box, scaled so the face is
about ``face_px`` wide: a few thousand pixels instead of a few hundred thousand.
"""

from __future__ import annotations

import cv2
import numpy as np

from emostream.tracking.tracker import iou
from emostream.vision.detection import Detection, FaceDetector

Box = tuple[int, int, int, int]
Window = tuple[int, int, int, int]  # x1, y1, x2, y2 in frame pixels


def suppress_duplicates(detections: list[Detection], iou_threshold: float = 0.4) -> list[Detection]:
    """Greedy non-maximum suppression: overlapping regions may report the same face twice."""
    kept: list[Detection] = []
    for d in sorted(detections, key=lambda d: d.score, reverse=True):
        if all(iou((d.x, d.y, d.w, d.h), (k.x, k.y, k.w, k.h)) < iou_threshold for k in kept):
            kept.append(d)
    kept.sort(key=lambda d: d.w * d.h, reverse=True)
    return kept


def search_window(box: Box, width: int, height: int, margin: float) -> Window | None:
    """The window (x1, y1, x2, y2) around ``box`` padded by ``margin`` x its longer side,
    clamped to the frame; None when less than 8 px of it is inside."""
    x, y, w, h = box
    pad = margin * max(w, h)
    x1, y1 = max(int(x - pad), 0), max(int(y - pad), 0)
    x2, y2 = min(int(x + w + pad), width), min(int(y + h + pad), height)
    if x2 - x1 < 8 or y2 - y1 < 8:
        return None
    return x1, y1, x2, y2


class RegionDetector:
    """Detect faces only near given boxes, with the detector the full-frame scan uses.

    ``detector`` may be a ``DownscaledDetector``; regions go to its inner detector, since they are
    already small. Boxes found are mapped back to frame pixels; ``min_face_px`` holds there.
    """

    def __init__(self, detector: FaceDetector, face_px: int = 64, margin: float = 0.6) -> None:
        self.raw = getattr(detector, "inner", detector)
        self.min_face_px = int(getattr(detector, "min_face_px", 0))
        self.face_px = face_px
        self.margin = margin

    def region(self, box: Box, width: int, height: int) -> Window | None:
        """The search window (x1, y1, x2, y2) around ``box``, clamped to the frame."""
        return search_window(box, width, height, self.margin)

    def detect(self, image: np.ndarray, boxes: list[Box]) -> list[Detection]:
        height, width = image.shape[:2]
        found: list[Detection] = []
        for box in boxes:
            window = self.region(box, width, height)
            if window is None:
                continue
            x1, y1, x2, y2 = window
            roi = image[y1:y2, x1:x2]
            scale = min(self.face_px / max(box[2], box[3], 1), 1.0)
            if scale < 1.0:
                roi = cv2.resize(
                    roi,
                    (max(int((x2 - x1) * scale), 1), max(int((y2 - y1) * scale), 1)),
                    interpolation=cv2.INTER_AREA,
                )
            for d in self.raw.detect(roi):
                bx, by = x1 + int(d.x / scale), y1 + int(d.y / scale)
                bw, bh = min(int(d.w / scale), width - bx), min(int(d.h / scale), height - by)
                if min(bw, bh) >= self.min_face_px:
                    found.append(Detection(bx, by, bw, bh, d.score))
        return suppress_duplicates(found)
