"""The bounds on what the aggregator keeps in Redis: ``EMOSTREAM_AGGREGATOR__*`` (a part of
``AggregatorOptions`` in ``emostream.config``, which re-exports it)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class RetentionOptions(BaseModel):
    """The bounds on what the aggregator keeps in Redis (read by its stores)."""

    max_events_per_stream: int = Field(1000, ge=1, description="Recent events kept per stream")
    stream_ttl_s: int = Field(
        7 * 24 * 3600, ge=60, description="A stream's state expires this long after its last event"
    )
    session_gap_seconds: float = Field(
        30.0, gt=0, le=86_400, description="A session ends after this long without events"
    )
    max_sessions_per_stream: int = Field(100, ge=1, description="Ended sessions kept per stream")
    max_deliveries_per_rule: int = Field(
        100, ge=1, description="Webhook deliveries logged per rule"
    )
    max_changes_per_stream: int = Field(
        1000, ge=1, description="Stable-emotion changes kept per stream"
    )
    max_alerts_per_stream: int = Field(1000, ge=1, description="Alerts kept per stream")
    max_tracks_per_stream: int = Field(
        1000, ge=1, description="Tracks kept per stream; the least recently seen leave first"
    )
    track_idle_s: int = Field(
        3600, ge=60, description="A track leaves its stream's tracks this long after its last event"
    )
    max_faces_per_stream: int = Field(
        100, ge=1, description="Faces of a stream's latest frame kept in its state"
    )
