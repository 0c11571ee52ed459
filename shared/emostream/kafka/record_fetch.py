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
FETCH_WAIT_MS = 1000  # one fetch of records known to be on the broker


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
    """Per partition, from the committed offset up to the highwater the failed fetch saw.

    The failed ``getmany`` may have advanced positions past records it then did not return, so
    every partition is rewound to its committed offset (everything before it was handled). Only
    records already on the broker at the failure are read (a partition at its highwater costs no
    wait), so a live flow cannot keep the isolation going: it once read one record at a time up
    to ``max_records``, at the rate records arrived (about 50 s of stalled storage per poison
    record in the demo), and waited a second on every empty partition.
    """
    out = Fetched()
    starts = {}
    for tp in sorted(consumer.assignment()):  # every partition first: then one fetch serves all
        committed = await consumer.committed(tp)
        if committed is None:  # nothing committed yet: from the start (auto_offset_reset=earliest)
            committed = (await consumer.beginning_offsets([tp]))[tp]
        consumer.seek(tp, committed)
        starts[tp] = committed
    for tp, committed in starts.items():
        end = consumer.highwater(tp)
        if end is not None and committed >= end:
            continue  # nothing to read here, and the poison is not here
        room = max(max_records - len(out.records), 1)
        if end is not None:
            room = min(room, end - committed)
        await _read_partition(consumer, tp, room, out)
    return out


async def _read_partition(
    consumer: AIOKafkaConsumer, tp: TopicPartition, room: int, out: Fetched
) -> None:
    """Up to ``room`` records of ``tp``: in chunks, and one at a time once a chunk fails, up to
    the unreadable record (dead-lettered; the next fetch goes on past it)."""
    single = False
    while room > 0:
        start = await consumer.position(tp)
        try:
            got = await consumer.getmany(
                tp, timeout_ms=FETCH_WAIT_MS, max_records=1 if single else room
            )
        except KafkaError:
            raise
        except Exception as exc:  # noqa: BLE001 - this chunk holds the unreadable record
            if not single:  # the records before it in the chunk were lost: again, one at a time
                consumer.seek(tp, start)
                single = True
                continue
            out.unreadable.append(
                Unreadable(tp.topic, tp.partition, start, f"{type(exc).__name__}: {exc}"[:500])
            )
            consumer.seek(tp, start + 1)
            return
        records = got.get(tp, [])
        if not records:
            return
        out.records.extend(records)
        room -= len(records)


def past(unreadable: list[Unreadable]) -> dict[TopicPartition, int]:
    """The offsets to commit once the unreadable records are dead-lettered."""
    return {TopicPartition(u.topic, u.partition): u.offset + 1 for u in unreadable}
