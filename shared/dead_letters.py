"""The error hook's destination: rejected messages go to the dead-letter topic with the reason."""

from __future__ import annotations

from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer

from emostream.schemas import DeadLetter

H_REASON = "emostream-dlq-reason"
H_DETAIL = "emostream-dlq-detail"
H_SOURCE = "emostream-dlq-source"


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
) -> DeadLetter:
    """Publish the original bytes and headers plus reason headers; returns the record sent.

    The value is kept as-is so an operator can replay it after a fix; the reason also travels
    as a JSON ``DeadLetter`` in a header for consumers that only read headers.
    """
    letter = DeadLetter(
        reason=reason,
        detail=detail[:500],
        source_topic=source_topic,
        source_partition=partition,
        source_offset=offset,
        stream_id=stream_id,
        failed_at=datetime.now(UTC),
    )
    extra = [
        (H_REASON, reason.encode()),
        (H_DETAIL, letter.detail.encode()),
        (H_SOURCE, f"{source_topic}/{partition}/{offset}".encode()),
        ("emostream-dlq-record", letter.model_dump_json().encode()),
    ]
    kept = [(k, v) for k, v in headers if not k.startswith("emostream-dlq-")]
    await producer.send_and_wait(
        topic,
        value or b"",
        key=(stream_id or "unknown").encode(),
        headers=kept + extra,
    )
    return letter
