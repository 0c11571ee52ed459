"""When and how a consume loop commits: after acknowledgement, tolerating a rebalance."""

from __future__ import annotations

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from emostream.kafka.broker_watch import BrokerWatch
from emostream.kafka.outage import bounded_commit

log = structlog.get_logger(__name__)


async def commit_after_ack(
    consumer: AIOKafkaConsumer,
    watch: BrokerWatch,
    offsets: dict[TopicPartition, int],
    timeout_s: float = 10.0,
) -> bool:
    """Commit ``offsets`` and tell ``watch``; whether the commit went through.

    Order, owed by the caller: (1) the batch's outputs (events, dead letters, alerts) were sent
    and every acknowledgement awaited; (2) only then this commit of ``{tp: last offset + 1}``.
    A crash between (1) and (2) replays the batch, which downstream deduplicates by id. A commit
    refused because the partitions moved during the batch is logged, not raised: the new owner
    replays the batch. A commit the broker cannot take (it is away, or lost the topic) is given
    up after ``timeout_s``, logged, and the topics are checked: the next batch's commit covers it.

    Args:
        consumer: the consumer whose group the offsets belong to.
        watch: told the committed offsets, to detect a broker that later loses them.
        offsets: the next offset to read per partition.
        timeout_s: the longest a commit may take.

    Returns:
        False when the commit failed (a rebalance, a broker away or without the topic).
    """
    if not offsets:
        return True
    try:
        await bounded_commit(consumer.commit(offsets), timeout_s)
    except (CommitFailedError, IllegalStateError) as exc:
        log.warning("commit failed after rebalance", error=str(exc))
        return False
    except (KafkaError, TimeoutError) as exc:
        log.warning("commit failed, the broker is away or lost the topic", error=repr(exc))
        watch.check_now()
        return False
    watch.committed(offsets)
    return True
