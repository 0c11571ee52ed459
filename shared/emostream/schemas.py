"""Event schema v1: what workers publish to the emotion-events topic and what the API returns."""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal, cast

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from emostream.labels import EMOTIONS, EmotionLabel, StableLabel

SCHEMA_VERSION: Literal[1] = 1
MAX_FUTURE_SKEW = timedelta(days=1)
MIN_CAPTURE_TIME = datetime(1970, 1, 1, tzinfo=UTC)  # Unix time, as frame headers carry it


def _plausible_capture_time(value: datetime) -> datetime:
    """Capture times between 1970 and a day ahead of this clock: a year-9999 time would break
    arithmetic (sessions, windows) downstream."""
    latest = datetime.now(UTC) + MAX_FUTURE_SKEW
    if not MIN_CAPTURE_TIME <= value <= latest:
        raise ValueError(
            f"capture time {value.isoformat()} is outside "
            f"{MIN_CAPTURE_TIME.date()}..now + {MAX_FUTURE_SKEW}"
        )
    return value


# Ids end up in Redis keys, URLs and the dashboard: a fixed alphabet, matched in full.
STREAM_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
TRACK_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,159}$"
StreamId = Annotated[str, Field(pattern=STREAM_ID_PATTERN)]
TrackId = Annotated[str, Field(pattern=TRACK_ID_PATTERN)]

# Naive datetimes are refused: mixed with aware ones in a batch they cannot be compared.
CaptureTime = Annotated[AwareDatetime, AfterValidator(_plausible_capture_time)]


class FaceBox(BaseModel):
    """Face bounding box in frame pixels (top-left corner, width, height)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    x: int = Field(ge=0)
    y: int = Field(ge=0)
    w: int = Field(gt=0)
    h: int = Field(gt=0)


class Face(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    index: int = Field(ge=0, description="Position of the face in the frame (detector order)")
    box: FaceBox
    detector_score: float = Field(ge=0.0, le=1.0)
    track_id: TrackId | None = Field(
        None, description="Stable id of this face across frames, if tracked"
    )


class EmotionResult(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    label: EmotionLabel
    confidence: float = Field(ge=0.0, le=1.0)
    probabilities: dict[EmotionLabel, float] = Field(
        description="All 7 class probabilities in FER2013 order; they sum to 1"
    )

    @field_validator("probabilities")
    @classmethod
    def _all_classes(cls, v: dict[str, float]) -> dict[str, float]:
        if list(v) != list(EMOTIONS):
            raise ValueError(f"probabilities must have exactly the keys {list(EMOTIONS)} in order")
        total = sum(v.values())
        if not math.isclose(total, 1.0, abs_tol=1e-3) or min(v.values()) < 0:
            raise ValueError(f"probabilities must be >= 0 and sum to 1, got sum {total:.6f}")
        return v

    @model_validator(mode="after")
    def _label_is_argmax(self) -> EmotionResult:
        if max(self.probabilities, key=self.probabilities.__getitem__) != self.label:
            raise ValueError("label must be the most probable class")
        return self


class SmoothedEmotion(BaseModel):
    """The track's emotion over time: EMA of probabilities with hysteresis on the label."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: StableLabel
    confidence: float = Field(ge=0.0, le=1.0)
    probabilities: dict[EmotionLabel, float]
    stable_for_s: float = Field(ge=0.0, description="How long the label has been the stable one")
    changed: bool = Field(description="The stable label changed (or was first set) on this frame")

    @field_validator("probabilities")
    @classmethod
    def _all_classes(cls, v: dict[str, float]) -> dict[str, float]:
        return EmotionResult._all_classes(v)


class ModelInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    version: str
    trained: bool = Field(description="False means random weights: predictions are meaningless")


class EmotionEventV1(BaseModel):
    """One classified face in one frame."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = SCHEMA_VERSION
    event_id: str = Field(
        description="Stable id: the same frame (stream, producer run, seq) and "
        "face always give the same id"
    )
    stream_id: StreamId
    frame_seq: int = Field(ge=0)
    captured_at: CaptureTime
    processed_at: AwareDatetime
    latency_ms: int | None = Field(None, description="Capture to processing, end to end")
    face: Face
    emotion: EmotionResult = Field(description="This frame's raw classification")
    smoothed: SmoothedEmotion | None = Field(None, description="Per-track smoothed emotion")
    model: ModelInfo

    # Derived, not serialised: the wire format is the fields above.
    @property
    def captured_ms(self) -> int:
        """Capture time in Unix ms: the event time of rules, sessions and windows."""
        return int(self.captured_at.timestamp() * 1000)

    @property
    def track_key(self) -> str:
        """The track id; an untracked face is keyed by its index (fine for one-face streams)."""
        return self.face.track_id or f"face-{self.face.index}"

    @property
    def capture_order(self) -> tuple[datetime, int, int]:
        """Sort key: capture time, then frame, then face (the order events are evaluated in)."""
        return self.captured_at, self.frame_seq, self.face.index

    @staticmethod
    def make_id(stream_id: str, frame_seq: int, face_index: int, run: str = "") -> str:
        """Deterministic, so redelivered frames (at-least-once) produce the same event ids.

        ``run`` tells producer runs apart (a restarted ingest starts its seq at 0 again): the
        frame's ``emostream-run`` header, else its capture time; "" gives the run-less id.
        """
        material = f"{stream_id}\x00{frame_seq}\x00{face_index}"
        if run:
            material = f"{stream_id}\x00{run}\x00{frame_seq}\x00{face_index}"
        return hashlib.sha256(material.encode()).hexdigest()[:32]


class EmotionChangeV1(BaseModel):
    """A track's stable (smoothed) emotion changed: the event kind bots usually want.

    Published to the changes topic, keyed by stream, once per change; the first stable
    label of a new track counts as a change from ``None``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = SCHEMA_VERSION
    kind: Literal["stable_change"] = "stable_change"
    event_id: str = Field(description="Id of the emotion event on which the change happened")
    stream_id: StreamId
    track_id: TrackId
    frame_seq: int = Field(ge=0)
    captured_at: CaptureTime
    from_label: StableLabel | None
    to_label: StableLabel
    confidence: float = Field(ge=0.0, le=1.0)
    previous_held_s: float | None = Field(None, ge=0.0, description="How long from_label was held")
    model: ModelInfo


RuleKind = Literal["probability_above", "stable_change"]  # the aggregator's rule kinds
DistributionSource = Literal["smoothed", "raw"]  # which probabilities a rule read


class AlertSummary(BaseModel):
    """What the track looked like when the rule fired."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: DistributionSource = Field(description="Which distribution the rule read")
    label: StableLabel = Field(description="Most probable (or stable) emotion")
    confidence: float = Field(ge=0.0, le=1.0)
    probabilities: dict[EmotionLabel, float]
    emotions: list[EmotionLabel] | None = Field(
        None, description="probability_above: summed emotions"
    )
    score: float | None = Field(None, description="probability_above: their summed probability")
    threshold: float | None = None
    above_for_s: float | None = Field(None, description="How long the score had been above")
    from_label: StableLabel | None = Field(None, description="stable_change")
    to_label: StableLabel | None = Field(None, description="stable_change")


class AlertV1(BaseModel):
    """A rule fired for one track: published to the alerts topic, POSTed to the rule's webhook."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = SCHEMA_VERSION
    alert_id: str = Field(description="sha256(rule, stream, track, episode start)[:32]")
    rule_id: str
    rule_name: str
    kind: RuleKind
    stream_id: StreamId
    track_id: TrackId
    episode_started_at: datetime = Field(description="Capture time the condition began")
    fired_at: datetime = Field(description="Capture time of the event that fired the rule")
    event_id: str = Field(description="The triggering emotion event")
    frame_seq: int = Field(ge=0)
    summary: AlertSummary

    @staticmethod
    def make_id(rule_id: str, stream_id: str, track_id: str, episode_start_ms: int) -> str:
        """Deterministic, so a re-evaluated episode gives the same id (receivers dedupe on it)."""
        material = f"{rule_id}\x00{stream_id}\x00{track_id}\x00{episode_start_ms}"
        return hashlib.sha256(material.encode()).hexdigest()[:32]


class DeadLetter(BaseModel):
    """Why a message went to the dead-letter topic (also sent as headers on the original bytes)."""

    model_config = ConfigDict(extra="forbid")

    reason: str
    detail: str
    source_topic: str
    source_partition: int
    source_offset: int
    stream_id: str | None = None
    failed_at: datetime
    value_bytes: int | None = Field(None, description="Size of the original value")
    value_sha256: str | None = Field(None, description="SHA-256 of the original value (hex)")
    value_kept: bool = Field(True, description="Whether the dead letter carries the value")


class LiveMessageV1(BaseModel):
    """A typed message of the aggregator's live push (``/v1/live?kind=...``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["event", "change", "alert"]
    stream_id: StreamId
    data: EmotionEventV1 | EmotionChangeV1 | AlertV1 = Field(description="As its type says")


def _open(node: object) -> object:
    """The schema with ``additionalProperties: false`` dropped everywhere (docs/EVENTS.md)."""
    if isinstance(node, dict):
        return {
            k: _open(v) for k, v in node.items() if not (k == "additionalProperties" and v is False)
        }
    return [_open(v) for v in node] if isinstance(node, list) else node


def json_schemas() -> dict[str, dict]:
    """Published JSON Schemas of every message type: they accept unknown fields, so consumers
    validating with them keep working when a version gains an optional field. Producers still
    validate strictly (the models forbid unknown fields); consumers parse with ``extra="ignore"``.
    """
    models = (EmotionEventV1, EmotionChangeV1, AlertV1, DeadLetter, LiveMessageV1)
    return {m.__name__: cast(dict, _open(m.model_json_schema())) for m in models}


def json_schemas_text() -> str:
    return json.dumps(json_schemas(), indent=2)
