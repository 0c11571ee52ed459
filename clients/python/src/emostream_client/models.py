"""Typed messages of emostream's contract, version 1 (docs/EVENTS.md in the emostream repo).

Consumers' models: unknown fields are ignored, so messages from a newer producer of the same
version (which may carry new optional fields) still parse. Field names and types match
``emostream schema``; a test in the emostream repo checks that they stay the same.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

EmotionLabel = Literal["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
StableLabel = EmotionLabel | Literal["uncertain"]
SCHEMA_VERSION = 1


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class FaceBox(_Message):
    x: int = Field(ge=0)
    y: int = Field(ge=0)
    w: int = Field(gt=0)
    h: int = Field(gt=0)


class Face(_Message):
    index: int = Field(ge=0)
    box: FaceBox
    detector_score: float = Field(ge=0.0, le=1.0)
    track_id: str | None = None


class EmotionResult(_Message):
    label: EmotionLabel
    confidence: float = Field(ge=0.0, le=1.0)
    probabilities: dict[EmotionLabel, float]


class SmoothedEmotion(_Message):
    label: StableLabel
    confidence: float = Field(ge=0.0, le=1.0)
    probabilities: dict[EmotionLabel, float]
    stable_for_s: float = Field(ge=0.0)
    changed: bool


class ModelInfo(_Message):
    name: str
    version: str
    trained: bool


class EmotionEvent(_Message):
    """One classified face in one frame (topic ``emostream.events``)."""

    schema_version: Literal[1] = 1
    event_id: str
    stream_id: str
    frame_seq: int = Field(ge=0)
    captured_at: datetime
    processed_at: datetime
    latency_ms: int | None = None
    face: Face
    emotion: EmotionResult
    smoothed: SmoothedEmotion | None = None
    model: ModelInfo


class EmotionChange(_Message):
    """A track's stable emotion changed (topic ``emostream.changes``)."""

    schema_version: Literal[1] = 1
    kind: Literal["stable_change"] = "stable_change"
    event_id: str
    stream_id: str
    track_id: str
    frame_seq: int = Field(ge=0)
    captured_at: datetime
    from_label: StableLabel | None
    to_label: StableLabel
    confidence: float = Field(ge=0.0, le=1.0)
    previous_held_s: float | None = Field(None, ge=0.0)
    model: ModelInfo


class AlertSummary(_Message):
    source: Literal["smoothed", "raw"]
    label: StableLabel
    confidence: float = Field(ge=0.0, le=1.0)
    probabilities: dict[EmotionLabel, float]
    emotions: list[EmotionLabel] | None = None
    score: float | None = None
    threshold: float | None = None
    above_for_s: float | None = None
    from_label: StableLabel | None = None
    to_label: StableLabel | None = None


class Alert(_Message):
    """A rule fired for one track (topic ``emostream.alerts`` and webhook bodies)."""

    schema_version: Literal[1] = 1
    alert_id: str
    rule_id: str
    rule_name: str
    kind: Literal["probability_above", "stable_change"]
    stream_id: str
    track_id: str
    episode_started_at: datetime
    fired_at: datetime
    event_id: str
    frame_seq: int = Field(ge=0)
    summary: AlertSummary


class LiveMessage(_Message):
    """One message of the live push: ``type`` says what ``data`` is."""

    type: Literal["event", "change", "alert"]
    stream_id: str
    data: EmotionEvent | EmotionChange | Alert
