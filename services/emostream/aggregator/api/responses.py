"""Response models of the aggregator's HTTP API (the JSON shapes; documented in ``/docs``).

Times are the ISO 8601 strings stored with the events, returned as stored. Stored event and face
documents are ``EmotionEventV1`` JSON (``emostream schema``), passed through as they are.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from emostream.aggregator.rules.model import Rule
from emostream.schemas import AlertV1, EmotionChangeV1


class Health(BaseModel):
    status: Literal["ok", "degraded"] = Field(description="degraded (HTTP 503): Redis or senders")
    redis: bool = Field(description="Redis answers a ping")
    consuming: bool = Field(description="The consumer has partitions assigned")
    webhooks: dict[str, Any] = Field(description="Webhook senders alive, configured, queued; ok")


class StreamSummary(BaseModel):
    stream_id: str
    events_total: int
    last_event_at: str | None
    last_frame_seq: int


class StreamsPage(BaseModel):
    streams: list[StreamSummary]
    count: int
    next_cursor: str | None = Field(description="cursor of the next page; null on the last")


class StreamState(BaseModel):
    stream_id: str
    events_total: int
    last_event_at: str | None
    last_processed_at: str | None
    last_frame_seq: int
    emotion_counts: dict[str, int]
    faces: list[dict[str, Any]] = Field(description="Events of the latest frame's faces")
    model: dict[str, Any] | None = Field(description="The model of the latest event")


class RecentEvents(BaseModel):
    stream_id: str
    events: list[dict[str, Any]] = Field(
        description="Newest first (EmotionEventV1); with ``after``: oldest first"
    )
    count: int
    next_cursor: str | None = Field(None, description="``after`` paging: the next page's cursor")


class Window(BaseModel):
    window_s: int
    events: int
    counts: dict[str, int]
    mean_probabilities: dict[str, float]
    dominant: str | None = Field(description="Highest mean probability; null without events")


class Windows(BaseModel):
    stream_id: str
    windows: list[Window]


class Track(BaseModel):
    track_id: str
    last_seen_at: str
    box: dict[str, Any]
    emotion: dict[str, Any]
    smoothed: dict[str, Any] | None


class Tracks(BaseModel):
    stream_id: str
    tracks: list[Track]
    count: int


class SessionSummary(BaseModel):
    counts: dict[str, int]
    mean_probabilities: dict[str, float]
    dominant: str | None


class SessionView(BaseModel):
    session_id: str
    stream_id: str
    started_at: str
    ended_at: str | None = Field(description="null while the session is active")
    last_event_at: str
    active: bool
    duration_s: float
    events: int
    tracks_seen: int
    track_ids: list[str] = Field(description="The first 100 tracks; tracks_seen counts on")
    max_faces_per_frame: int
    summary: SessionSummary


class Sessions(BaseModel):
    stream_id: str
    session_gap_seconds: float
    sessions: list[SessionView] = Field(description="Newest first, the current one first")
    count: int


class RuleList(BaseModel):
    rules: list[Rule] = Field(description="Oldest first")
    count: int


class Deliveries(BaseModel):
    rule_id: str
    deliveries: list[dict[str, Any]] = Field(description="Newest first")
    count: int


class AlertDelivery(BaseModel):
    state: Literal["none", "pending", "delivered", "failed"] = Field(
        description="none: the rule has no webhook; pending: not attempted or still retrying"
    )
    attempts: int
    status_code: int | None
    delivered_at: str | None


class StreamAlert(AlertV1):
    delivery: AlertDelivery = Field(description="Its webhook delivery, from the rule's log")


class ChangesPage(BaseModel):
    stream_id: str
    changes: list[EmotionChangeV1] = Field(description="Newest first")
    count: int
    next_cursor: str | None = Field(description="``before`` of the next page; null on the last")


class AlertsPage(BaseModel):
    stream_id: str
    alerts: list[StreamAlert] = Field(description="Newest first")
    count: int
    next_cursor: str | None = Field(description="``before`` of the next page; null on the last")
