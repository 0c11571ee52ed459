"""CPU-side work for one micro-batch: decode, detect, crop (official geometry), classify, build events."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import cv2
import numpy as np

from emostream.errors import InvalidFrame
from emostream.frames import FrameMeta, decode_frame, parse_headers
from emostream.inference import EmotionEngine
from emostream.models.registry import EMOTIONS
from emostream.schemas import EmotionEventV1, EmotionResult, Face, FaceBox, ModelInfo
from emostream.vision import FaceDetector, crop, official_crop_box


@dataclass
class RawFrame:
    """A frame record as consumed: where it came from and its bytes."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    headers: list[tuple[str, bytes]]


@dataclass
class Rejected:
    frame: RawFrame
    reason: str
    detail: str
    stream_id: str | None = None


@dataclass
class BatchResult:
    events: list[EmotionEventV1] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    frames_ok: int = 0
    faces: int = 0


class FrameProcessor:
    """Turns raw frame records into emotion events; never raises for a bad frame."""

    def __init__(self, detector: FaceDetector, engine: EmotionEngine) -> None:
        self.detector = detector
        self.engine = engine
        self.model_info = ModelInfo(
            name=engine.model_name if engine.trained else f"{engine.model_name} (UNTRAINED)",
            version=engine.model_version,
            trained=engine.trained,
        )

    def process(self, frames: list[RawFrame]) -> BatchResult:
        result = BatchResult()
        crops: list[np.ndarray] = []
        faces: list[tuple[FrameMeta, Face]] = []
        for raw in frames:
            meta: FrameMeta | None = None
            try:
                meta = parse_headers(raw.headers)
                image = decode_frame(raw.value)
            except InvalidFrame as exc:
                sid = meta.stream_id if meta else None
                result.rejected.append(Rejected(raw, exc.reason, str(exc), sid))
                continue
            result.frames_ok += 1
            gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
            h, w = gray.shape
            index = 0
            for det in self.detector.detect(image):
                box = official_crop_box(det.x, det.y, det.w, det.h, w, h)
                if box is None:
                    continue
                crops.append(crop(gray, box))
                faces.append(
                    (meta, Face(index=index, box=FaceBox(x=det.x, y=det.y, w=det.w, h=det.h),
                                detector_score=round(min(max(det.score, 0.0), 1.0), 4)))
                )
                index += 1
        if not crops:
            return result
        probs = self.engine.classify(crops)
        now = datetime.now(UTC)
        for (meta, face), p in zip(faces, probs):
            result.events.append(self._event(meta, face, p, now))
        result.faces = len(faces)
        return result

    def _event(self, meta: FrameMeta, face: Face, p: np.ndarray, now: datetime) -> EmotionEventV1:
        rounded = np.round(p, 6)
        rounded[int(np.argmax(rounded))] += 1.0 - rounded.sum()  # exact sum after rounding
        probabilities = {name: float(v) for name, v in zip(EMOTIONS, rounded)}
        label = EMOTIONS[int(np.argmax(rounded))]
        return EmotionEventV1(
            event_id=EmotionEventV1.make_id(meta.stream_id, meta.seq, face.index),
            stream_id=meta.stream_id,
            frame_seq=meta.seq,
            captured_at=datetime.fromtimestamp(meta.captured_ms / 1000, UTC),
            processed_at=now,
            face=face,
            emotion=EmotionResult(label=label, confidence=probabilities[label], probabilities=probabilities),
            model=self.model_info,
        )
