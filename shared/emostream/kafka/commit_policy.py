"""When and how a consume loop commits: after acknowledgement, tolerating a rebalance."""

from __future__ import annotations

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError

from emostream.kafka.broker_watch import BrokerWatch

log = structlog.get_logger(__name__)


async def commit_after_ack(
    consumer: AIOKafkaConsumer, watch: BrokerWatch, offsets: dict[TopicPartition, int]
) -> bool:
    """Commit ``offsets`` and tell ``watch``; whether the commit went through.

    Order, owed by the caller: (1) the batch's outputs (events, dead letters, alerts) were sent
    and every acknowledgement awaited; (2) only then this commit of ``{tp: last offset + 1}``.
    A crash between (1) and (2) replays the batch, which downstream deduplicates by id. A commit
    refused because the partitions moved during the batch is logged, not raised: the new owner
    replays the batch.

    Args:
        consumer: the consumer whose group the offsets belong to.
        watch: told the committed offsets, to detect a broker that later loses them.
        offsets: the next offset to read per partition.

    Returns:
        False when the commit failed after a rebalance.
    """
    if not offsets:
        return True
    try:
        await consumer.commit(offsets)
    except (CommitFailedError, IllegalStateError) as exc:
        log.warning("commit failed after rebalance", error=str(exc))
        return False
    watch.committed(offsets)
    return True
