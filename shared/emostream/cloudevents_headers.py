"""CloudEvents 1.0 binary-mode attributes for every message emostream publishes.

Kafka (events, changes, alerts, dead letters) carries them as ``ce_*`` headers plus
``content-type``; webhooks as HTTP ``ce-*`` headers. The payload stays the plain JSON body, so
consumers that ignore the headers see no change, and the older ``emostream-schema`` header stays.

- ``ce_id``: the message's own id (an event's ``event_id``, an alert's ``alert_id``); a change
  is ``<event_id>.change`` (the change happened on that event: same source, so another id).
  Ids are deterministic, so a redelivered message has the same ``ce_source`` + ``ce_id``.
- ``ce_source``: ``/emostream/streams/<stream_id>``; dead letters ``/emostream/topics/<topic>``.
- ``ce_type``: ``io.emostream.<kind>.v<schema version>``; a new schema version is a new type.
- ``ce_time``: RFC 3339 UTC: capture time (events, changes), fire time (alerts), failure time
  (dead letters).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from emostream.schemas import AlertV1, EmotionChangeV1, EmotionEventV1

SPECVERSION = "1.0"
JSON = "application/json"
TYPE_EVENT = "io.emostream.emotion.v1"
TYPE_CHANGE = "io.emostream.change.v1"
TYPE_ALERT = "io.emostream.alert.v1"
TYPE_DEAD_LETTER = "io.emostream.deadletter.v1"
KAFKA_PREFIX = "ce_"
HTTP_PREFIX = "ce-"
CONTENT_TYPE = "content-type"


@dataclass(frozen=True)
class CloudEventAttrs:
    """The context attributes of one message (``specversion`` is always 1.0)."""

    id: str
    source: str
    type: str
    time: datetime
    content_type: str | None = JSON
    subject: str | None = None


def rfc3339(when: datetime) -> str:
    """``2026-01-02T03:04:05.678Z``; a naive time is taken as UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def stream_source(stream_id: str) -> str:
    return f"/emostream/streams/{stream_id}"


def attrs_for(message: EmotionEventV1 | EmotionChangeV1 | AlertV1) -> CloudEventAttrs:
    """The attributes of an event, a change or an alert."""
    source = stream_source(message.stream_id)
    if isinstance(message, EmotionEventV1):
        subject = message.face.track_id
        return CloudEventAttrs(
            message.event_id, source, TYPE_EVENT, message.captured_at, JSON, subject
        )
    if isinstance(message, EmotionChangeV1):
        change_id = f"{message.event_id}.change"
        return CloudEventAttrs(
            change_id, source, TYPE_CHANGE, message.captured_at, JSON, message.track_id
        )
    return CloudEventAttrs(
        message.alert_id, source, TYPE_ALERT, message.fired_at, JSON, message.track_id
    )


def dead_letter_attrs(
    source_topic: str, partition: int, offset: int, failed_at: datetime, content_type: str | None
) -> CloudEventAttrs:
    """A dead letter's attributes: its id is stable for the record it stands for."""
    where = f"{source_topic}/{partition}/{offset}"
    letter_id = hashlib.sha256(where.encode()).hexdigest()[:32]
    return CloudEventAttrs(
        letter_id,
        f"/emostream/topics/{source_topic}",
        TYPE_DEAD_LETTER,
        failed_at,
        content_type,
        f"{partition}/{offset}",
    )


def _pairs(attrs: CloudEventAttrs) -> list[tuple[str, str]]:
    pairs = [
        ("specversion", SPECVERSION),
        ("id", attrs.id),
        ("source", attrs.source),
        ("type", attrs.type),
        ("time", rfc3339(attrs.time)),
    ]
    if attrs.subject:
        pairs.append(("subject", attrs.subject))
    return pairs


def kafka_headers(attrs: CloudEventAttrs) -> list[tuple[str, bytes]]:
    """Kafka protocol binding, binary mode: ``ce_<attr>`` headers and ``content-type``."""
    headers = [(KAFKA_PREFIX + name, value.encode()) for name, value in _pairs(attrs)]
    if attrs.content_type:
        headers.append((CONTENT_TYPE, attrs.content_type.encode()))
    return headers


def http_headers(attrs: CloudEventAttrs) -> dict[str, str]:
    """HTTP protocol binding, binary mode: ``ce-<attr>`` headers (``Content-Type`` is the
    caller's, which sends the body)."""
    return {HTTP_PREFIX + name: value for name, value in _pairs(attrs)}


def is_cloudevents_header(name: str) -> bool:
    """A Kafka header this module writes (a dead letter replaces the original's)."""
    lowered = name.lower()
    return lowered.startswith(KAFKA_PREFIX) or lowered == CONTENT_TYPE
