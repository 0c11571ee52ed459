"""Kafka client construction and topic creation from ``KafkaOptions``."""

from __future__ import annotations

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError

from emostream.errors import DependencyUnavailable
from emostream.kafka.security import client_security
from emostream.settings import KafkaOptions

log = structlog.get_logger(__name__)


def _common(settings: KafkaOptions, suffix: str) -> dict:
    """What every client shares: brokers, id, timeout, and TLS/SASL (one SSL context)."""
    return {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": f"{settings.client_id}-{suffix}",
        "request_timeout_ms": settings.request_timeout_ms,
    } | client_security(settings)


def client_kwargs(settings: KafkaOptions, suffix: str) -> dict:
    """Connection arguments for a client built elsewhere (benchmarks, tools): the same security."""
    return _common(settings, suffix)


def make_producer(settings: KafkaOptions, suffix: str, **overrides) -> AIOKafkaProducer:
    """acks=all producer. Not idempotent: some Kafka-protocol brokers lack InitProducerId;
    duplicates are harmless because event ids are deterministic."""
    kwargs = _common(settings, suffix) | {
        "acks": "all",
        "linger_ms": 5,
        "max_request_size": settings.max_message_bytes,
        "compression_type": None,
    }
    kwargs.update(overrides)
    return AIOKafkaProducer(**kwargs)


def make_consumer(
    settings: KafkaOptions, topics: list[str], group_id: str, suffix: str, **overrides
) -> AIOKafkaConsumer:
    """Manual-commit consumer: offsets are committed only after the work is acknowledged.

    Memory is bounded at two places. The loops take ``getmany(max_records=...)`` batches and
    fetch again only after a batch is stored or published. Underneath, aiokafka prefetches, but
    keeps at most one fetched response per partition and fetches a partition again only once
    the loop has taken all of it: on Kafka each partition's share is at most
    ``max_partition_fetch_bytes`` (1 MiB, or one message of ``max_message_bytes``) and the whole
    response at most ``fetch_max_bytes`` (8 MiB by default). Tansu, the test broker, ignores the
    per-partition limit; measured, each partition's response stayed within ``fetch_max_bytes``.
    Either limit is exceeded by at most one record batch, which brokers return whole so that a
    large message still makes progress.

    Metadata is refreshed every 30 s instead of aiokafka's 5 min, so that partitions added by
    an operator, or a topic auto-created with another partition count after a broker restart,
    are noticed sooner.
    """
    kwargs = _common(settings, suffix) | {
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": settings.session_timeout_ms,
        "heartbeat_interval_ms": settings.heartbeat_interval_ms,
        "max_partition_fetch_bytes": max(settings.max_message_bytes, 1_048_576),
        "fetch_max_bytes": max(settings.fetch_max_bytes, settings.max_message_bytes),
        "fetch_max_wait_ms": settings.fetch_max_wait_ms,
        "metadata_max_age_ms": 30_000,
    }
    kwargs.update(overrides)
    return AIOKafkaConsumer(*topics, **kwargs)


async def ensure_topics(settings: KafkaOptions) -> None:
    """Create the pipeline's topics (frames, events, dead letters, changes, alerts) if missing."""
    if not settings.create_topics:
        return
    admin = AIOKafkaAdminClient(**_common(settings, "admin"))
    try:
        await admin.start()
    except KafkaConnectionError as exc:
        raise DependencyUnavailable(
            f"Kafka not reachable at {settings.bootstrap_servers}: {exc}"
        ) from exc
    try:
        existing = set(await admin.list_topics())
        wanted = [
            settings.frames_topic,
            settings.events_topic,
            settings.dlq_topic,
            settings.changes_topic,
            settings.alerts_topic,
        ]
        new = [
            NewTopic(t, settings.topic_partitions, settings.replication_factor)
            for t in wanted
            if t not in existing
        ]
        if new:
            try:
                await admin.create_topics(new)
            except KafkaError as exc:  # a concurrent creator won the race
                log.info("create topics", result=str(exc))
            log.info("topics created", topics=[t.name for t in new])
    finally:
        await admin.close()


def next_offsets(records: list) -> dict[TopicPartition, int]:
    """Per partition, the offset to commit after ``records``: the last one's offset + 1."""
    offsets: dict[TopicPartition, int] = {}
    for r in records:
        tp = TopicPartition(r.topic, r.partition)
        offsets[tp] = max(offsets.get(tp, 0), r.offset + 1)
    return offsets
