"""The worker's last stage: classify the crops, smooth per track, build the events once at the end.

Labels come from the loaded classifier's preprocessing config (``engine.preprocessing.labels``),
so a model trained on other classes names them itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from emostream.frames import FrameMeta
from emostream.inference import EmotionEngine
from emostream.schemas import (
    EmotionChangeV1,
    EmotionEventV1,
    EmotionResult,
    Face,
    ModelInfo,
    SmoothedEmotion,
)
from emostream.tracking.smoother import Smoothed
from emostream.worker.batch import BatchResult, Detected
from emostream.worker.streams import StreamStates


def probs_dict(p: np.ndarray, labels: tuple[str, ...]) -> dict[str, float]:
    """Probabilities by label, rounded to 6 places and still summing to exactly 1."""
    rounded = np.round(np.asarray(p, dtype=np.float64), 6)
    rounded[int(np.argmax(rounded))] += 1.0 - rounded.sum()  # exact sum after rounding
    return {name: float(v) for name, v in zip(labels, rounded)}


def model_info(engine: EmotionEngine) -> ModelInfo:
    """What every event says about the model that made it."""
    return ModelInfo(
        name=engine.model_name if engine.trained else f"{engine.model_name} (UNTRAINED)",
        version=engine.model_version,
        trained=engine.trained,
    )


@dataclass
class _Scored:
    """One face, classified and smoothed: everything an event needs, not yet validated."""

    frame: Detected
    face: Face
    probs: np.ndarray
    smoothed: Smoothed


class ClassifyStage:
    """Classify crops, update each track's smoother, then build events and change events."""

    def __init__(self, engine: EmotionEngine) -> None:
        self.engine = engine
        self.labels: tuple[str, ...] = tuple(engine.preprocessing.labels)
        self.model_info = model_info(engine)

    def classify(self, crops: list[np.ndarray]) -> np.ndarray:
        """N x len(labels) probabilities for grey crops (the same call ``predict`` makes)."""
        return self.engine.classify(crops)

    def emit(
        self, result: BatchResult, frames: list[Detected], probs: np.ndarray, states: StreamStates
    ) -> None:
        """Smooth every face in capture order, then build each frame's events, all or none."""
        scored: dict[int, list[_Scored]] = {}
        faces = [(d, f) for d in frames for f in d.faces]
        for (frame, face), p in zip(faces, probs):
            sm = states.get(frame.meta.stream_id).smoother.update(
                face.track_id, p, frame.meta.captured_ms / 1000
            )
            scored.setdefault(id(frame), []).append(_Scored(frame, face, p, sm))
        now = datetime.now(UTC)
        for items in scored.values():
            frame = items[0].frame
            try:
                built = [self._outputs(s, now) for s in items]
            except Exception as exc:  # noqa: BLE001 - one bad frame must not stop the partition
                result.reject(
                    frame.raw, "processing_error", f"event not built: {exc}", frame.meta.stream_id
                )
                result.frames_ok -= 1
                continue
            for event, change in built:
                result.events.append(event)
                if change is not None:
                    result.changes.append(change)
        result.faces += len(faces)

    def _outputs(self, s: _Scored, now: datetime) -> tuple[EmotionEventV1, EmotionChangeV1 | None]:
        """The face's event and, when its stable emotion changed, the change event."""
        sm = s.smoothed
        smoothed = SmoothedEmotion(
            label=sm.label,
            confidence=round(min(sm.confidence, 1.0), 6),
            probabilities=probs_dict(sm.probabilities, self.labels),
            stable_for_s=round(sm.stable_for_s, 3),
            changed=sm.changed,
        )
        event = self.event(s.frame.meta, s.face, s.probs, now, smoothed)
        if not sm.changed:
            return event, None
        return event, EmotionChangeV1(
            event_id=event.event_id,
            stream_id=event.stream_id,
            track_id=s.face.track_id,
            frame_seq=event.frame_seq,
            captured_at=event.captured_at,
            from_label=sm.previous,
            to_label=sm.label,
            confidence=smoothed.confidence,
            previous_held_s=(
                round(sm.previous_held_s, 3) if sm.previous_held_s is not None else None
            ),
            model=self.model_info,
        )

    def event(
        self,
        meta: FrameMeta,
        face: Face,
        p: np.ndarray,
        now: datetime,
        smoothed: SmoothedEmotion | None = None,
    ) -> EmotionEventV1:
        """One face's event (its raw classification and, if given, the smoothed one)."""
        probabilities = probs_dict(p, self.labels)
        label = max(probabilities, key=probabilities.__getitem__)
        return EmotionEventV1(
            # The producer's run (else the capture time) keeps a restarted ingest's seq 0, 1, ...
            # from colliding with the last run's ids, which the aggregator would drop as replays.
            event_id=EmotionEventV1.make_id(
                meta.stream_id, meta.seq, face.index, meta.run_id or f"t{meta.captured_ms}"
            ),
            stream_id=meta.stream_id,
            frame_seq=meta.seq,
            captured_at=datetime.fromtimestamp(meta.captured_ms / 1000, UTC),
            processed_at=now,
            latency_ms=int(now.timestamp() * 1000) - meta.captured_ms,
            face=face,
            emotion=EmotionResult(
                label=label, confidence=probabilities[label], probabilities=probabilities
            ),
            smoothed=smoothed,
            model=self.model_info,
        )
