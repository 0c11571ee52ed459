"""The error hook's destination: rejected messages go to the dead-letter topic with the reason."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer

from emostream.cloudevents_headers import dead_letter_attrs, is_cloudevents_header, kafka_headers
from emostream.kafka.record_fetch import Unreadable
from emostream.schemas import DeadLetter

H_REASON = "emostream-dlq-reason"
H_DETAIL = "emostream-dlq-detail"
H_SOURCE = "emostream-dlq-source"
H_TRUNCATED = "emostream-dlq-truncated"  # "<original value bytes>/<original header bytes>"
ENVELOPE_BYTES = 1024  # record batch framing, varints and the key, with room to spare
MAX_HEADER_VALUE_BYTES = 256  # each kept header once the originals do not fit whole
MAX_HEADERS = 64


async def send_dead_letter(
    producer: AIOKafkaProducer,
    topic: str,
    *,
    source_topic: str,
    partition: int,
    offset: int,
    value: bytes | None,
    headers: list[tuple[str, bytes]],
    reason: str,
    detail: str,
    stream_id: str | None,
    max_bytes: int | None = None,
    keep_value: bool = True,
) -> DeadLetter:
    """Publish the original bytes and headers plus reason headers; returns the record sent.

    The value is kept as-is so an operator can replay it after a fix; the reason also travels
    as a JSON ``DeadLetter`` in a header for consumers that only read headers. With
    ``max_bytes`` (the producer's ``max_request_size``), what does not fit is truncated: the
    original headers first (each cut to 256 bytes, at most 64), then the value; the original
    sizes go in ``emostream-dlq-truncated``. The reason and the source coordinates always fit.
    Without ``keep_value`` (frames: their images are faces) the value is left out; its size and
    SHA-256 are in the ``DeadLetter`` either way.
    """
    letter = DeadLetter(
        reason=reason,
        detail=detail[:500],
        source_topic=source_topic,
        source_partition=partition,
        source_offset=offset,
        stream_id=stream_id,
        failed_at=datetime.now(UTC),
        value_bytes=None if value is None else len(value),
        value_sha256=None if value is None else hashlib.sha256(value).hexdigest(),
        value_kept=keep_value and value is not None,
    )
    extra = [
        (H_REASON, reason.encode()),
        (H_DETAIL, letter.detail.encode()),
        (H_SOURCE, f"{source_topic}/{partition}/{offset}".encode()),
        ("emostream-dlq-record", letter.model_dump_json().encode()),
    ]
    kept: list[tuple[str, bytes | None]] = [
        (k, v)
        for k, v in headers
        if not k.startswith("emostream-dlq-") and not is_cloudevents_header(k)
    ]
    key = (stream_id or "unknown").encode()[:256]
    value = (value or b"") if keep_value else b""
    extra += _cloudevent(letter, headers, value)
    if max_bytes is not None:
        value, kept, truncated = _fit(value, kept, extra, key, max_bytes)
        if truncated:
            extra.append((H_TRUNCATED, truncated.encode()))
    await producer.send_and_wait(topic, value, key=key, headers=kept + extra)
    return letter


def _cloudevent(
    letter: DeadLetter, headers: list[tuple[str, bytes]], value: bytes
) -> list[tuple[str, bytes]]:
    """CloudEvents headers of the dead letter (the original's ``ce_*`` are replaced): its data
    is the original value, so its content type is the original's (none when the value is
    left out); the original's CloudEvents id and type stay readable under ``-original-``."""
    original = {k.lower(): v for k, v in headers if is_cloudevents_header(k)}
    content_type = None
    if value:
        content_type = original.get("content-type", b"application/octet-stream").decode(
            errors="replace"
        )
    attrs = dead_letter_attrs(
        letter.source_topic,
        letter.source_partition,
        letter.source_offset,
        letter.failed_at,
        content_type,
    )
    kept = [(f"emostream-dlq-original-{k}", v) for k, v in original.items() if k in _ORIGINAL]
    return kafka_headers(attrs) + kept


_ORIGINAL = ("ce_id", "ce_type", "ce_source")


def _size(headers: Sequence[tuple[str, bytes | None]]) -> int:
    return sum(len(k.encode()) + len(v or b"") for k, v in headers)


def _fit(
    value: bytes,
    kept: list[tuple[str, bytes | None]],
    extra: list[tuple[str, bytes]],
    key: bytes,
    max_bytes: int,
) -> tuple[bytes, list, str | None]:
    """Value and original headers cut to fit ``max_bytes`` with the reason headers."""
    budget = max_bytes - ENVELOPE_BYTES - len(key) - _size(extra) - 64  # 64: the truncation header
    original = f"{len(value)}/{_size(kept)}"
    cut_headers = _size(kept) > budget // 4
    if cut_headers:
        kept = [
            (k[:MAX_HEADER_VALUE_BYTES], (v or b"")[:MAX_HEADER_VALUE_BYTES])
            for k, v in kept[:MAX_HEADERS]
        ]
    room = max(budget - _size(kept), 0)
    if not cut_headers and len(value) <= room:
        return value, kept, None
    return value[:room], kept, original


async def dead_letter_unreadable(
    producer: AIOKafkaProducer, topic: str, unreadable: list[Unreadable]
) -> None:
    """Dead-letter records the client could not parse: no bytes, only where they were and why."""
    for u in unreadable:
        await send_dead_letter(
            producer,
            topic,
            source_topic=u.topic,
            partition=u.partition,
            offset=u.offset,
            value=None,
            headers=[],
            reason="unreadable_record",
            detail=u.error,
            stream_id=None,
        )
