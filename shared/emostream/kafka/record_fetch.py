"""``getmany`` that survives records the Kafka client cannot parse.

aiokafka decodes every header key as UTF-8 while it iterates a fetched batch; one record with a
key that is not UTF-8 raises inside ``getmany``, on every retry and after every restart (a
crash loop). On such an error ``fetch_batch`` rewinds each assigned partition to its committed
offset and reads them one record at a time: records before the unreadable one are returned as
usual, the unreadable one is reported with its coordinates (to be dead-lettered and committed
past), and the next fetch goes on normally.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Unreadable:
    """A record the client could not parse: only where it is and why are known."""

    topic: str
    partition: int
    offset: int
    error: str


@dataclass
class Fetched:
    records: list = field(default_factory=list)
    unreadable: list[Unreadable] = field(default_factory=list)


async def fetch_batch(consumer: AIOKafkaConsumer, timeout_ms: int, max_records: int) -> Fetched:
    """One ``getmany``; after a parse error, the readable records and the unreadable ones."""
    try:
        batches = await consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
    except KafkaError:
        raise
    except Exception as exc:  # noqa: BLE001 - a record that does not parse (UnicodeDecodeError...)
        log.warning(
            "unreadable record in a fetch, isolating it", error=f"{type(exc).__name__}: {exc}"
        )
        return await _isolate(consumer, max_records)
    return Fetched([r for recs in batches.values() for r in recs])


async def _isolate(consumer: AIOKafkaConsumer, max_records: int) -> Fetched:
    """Per partition, from the committed offset: one record at a time up to the unreadable one.

    The failed ``getmany`` may have advanced positions past records it then did not return, so
    every partition is rewound to its committed offset (everything before it was handled).
    """
    out = Fetched()
    for tp in sorted(consumer.assignment()):
        committed = await consumer.committed(tp)
        if committed is None:  # nothing committed yet: from the start (auto_offset_reset=earliest)
            committed = (await consumer.beginning_offsets([tp]))[tp]
        consumer.seek(tp, committed)
        for _ in range(max(max_records - len(out.records), 1)):
            try:
                got = await consumer.getmany(tp, timeout_ms=1000, max_records=1)
            except KafkaError:
                raise
            except Exception as exc:  # noqa: BLE001 - this partition's next record is the one
                offset = await consumer.position(tp)
                out.unreadable.append(
                    Unreadable(tp.topic, tp.partition, offset, f"{type(exc).__name__}: {exc}"[:500])
                )
                consumer.seek(tp, offset + 1)
                break
            if not got.get(tp):
                break
            out.records.extend(got[tp])
    return out


def past(unreadable: list[Unreadable]) -> dict[TopicPartition, int]:
    """The offsets to commit once the unreadable records are dead-lettered."""
    return {TopicPartition(u.topic, u.partition): u.offset + 1 for u in unreadable}
