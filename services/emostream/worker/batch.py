"""What a micro-batch is made of on its way through the worker's stages."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from emostream.frames import FrameMeta
from emostream.schemas import EmotionChangeV1, EmotionEventV1, Face


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
    changes: list[EmotionChangeV1] = field(default_factory=list)  # stable-emotion changes
    rejected: list[Rejected] = field(default_factory=list)
    frames_ok: int = 0
    faces: int = 0
    stale_dropped: dict[str, int] = field(default_factory=dict)  # per stream
    # Seconds each stage took for this batch (decode and detect summed over frames and threads)
    stage_s: dict[str, float] = field(default_factory=dict)

    def add_time(self, stage: str, seconds: float) -> None:
        self.stage_s[stage] = self.stage_s.get(stage, 0.0) + seconds

    def count_stale(self, stream_id: str) -> None:
        self.stale_dropped[stream_id] = self.stale_dropped.get(stream_id, 0) + 1

    def reject(
        self, frame: RawFrame, reason: str, detail: str, stream_id: str | None = None
    ) -> None:
        """The one way a frame leaves the batch for the dead-letter topic."""
        self.rejected.append(Rejected(frame, reason, detail, stream_id))

    def sort_rejected(self) -> None:
        """Dead letters in offset order, whichever stage rejected them."""
        self.rejected.sort(key=lambda r: (r.frame.topic, r.frame.partition, r.frame.offset))


@dataclass
class Detected:
    """One frame after detection and tracking, before classification."""

    meta: FrameMeta
    raw: RawFrame
    crops: list[np.ndarray] = field(default_factory=list)
    faces: list[Face] = field(default_factory=list)
    rejected: Rejected | None = None
    stale: bool = False  # aged past the limit while earlier frames were detected
    # Tracks that ended at this frame: their smoothers are forgotten once this frame is
    # classified (after the smoothing of the frames before it, which may still be in flight).
    ended_tracks: list[str] = field(default_factory=list)
    decode_s: float = 0.0
    detect_s: float = 0.0  # detection, tracking and crops


@dataclass
class DetectedBatch:
    """A micro-batch after the first stage (``FrameProcessor.prepare``): what ``finish`` needs."""

    result: BatchResult
    kept: list[Detected] = field(default_factory=list)
