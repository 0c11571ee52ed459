"""Broker restarts that lose data: detect them from offsets, recreate missing topics, go on.

A broker that comes back without its log (a memory-only test broker, a wiped volume, an unclean
leader election, a topic deleted and recreated by hand) leaves consumers in a new world: their
group and committed offsets are gone, their topic may be gone, and the clients reconnect by
themselves. What they do not do is notice what was lost or recreate topics with the configured
partition count. ``BrokerWatch`` adds both to a consumer loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from emostream import metrics
from emostream.errors import DependencyUnavailable
from emostream.kafka.clients import ensure_topics
from emostream.settings import KafkaOptions

log = structlog.get_logger(__name__)


class TopicWatch:
    """Recreates the pipeline's topics when the broker has lost ``topic`` (checked periodically).

    Args:
        kafka: settings used to recreate the topics (``ensure_topics``).
        topic: the topic to watch.
        list_topics: coroutine function returning the topic names the broker has now.
        owner: who watches (a consumer group, "ingest"), for logs.
        check_interval_s: how often to ask the broker whether ``topic`` exists.
        max_backoff_s: cap on the doubling delay between checks that fail (broker down).
        check_timeout_s: a check never blocks its caller longer than this.
    """

    def __init__(
        self,
        kafka: KafkaOptions,
        topic: str,
        list_topics: Callable[[], Awaitable[Iterable[str]]],
        owner: str,
        check_interval_s: float = 5.0,
        max_backoff_s: float = 30.0,
        check_timeout_s: float = 5.0,
    ) -> None:
        self.kafka = kafka
        self.topic = topic
        self.owner = owner
        self.check_interval_s = check_interval_s
        self.max_backoff_s = max_backoff_s
        self.check_timeout_s = check_timeout_s
        self._list_topics = list_topics
        self._next_check = time.monotonic() + check_interval_s
        self._backoff_s = check_interval_s
        self.topics_recreated = 0

    def check_now(self) -> None:
        """Make the next ``ensure_topic`` check at once (a send or commit just failed)."""
        self._next_check = time.monotonic()
        self._backoff_s = self.check_interval_s

    async def ensure_topic(self) -> bool:
        """At most every ``check_interval_s``: recreate the topics if ours is gone.

        While the broker is unreachable the checks back off (doubling, capped at
        ``max_backoff_s``) and never raise: the clients reconnect by themselves. Returns True
        when topics were recreated.
        """
        now = time.monotonic()
        if now < self._next_check:
            return False
        try:
            async with asyncio.timeout(self.check_timeout_s):
                present = self.topic in set(await self._list_topics())
                if not present:
                    log.warning(
                        "topic missing on the broker",
                        topic=self.topic,
                        owner=self.owner,
                        recreate=self.kafka.create_topics,
                    )
                    await ensure_topics(self.kafka)
        except (KafkaError, DependencyUnavailable, OSError, TimeoutError) as exc:
            self._next_check = time.monotonic() + self._backoff_s
            log.info(
                "topic check failed, retrying",
                topic=self.topic,
                error=repr(exc),
                retry_in_s=self._backoff_s,
            )
            self._backoff_s = min(self._backoff_s * 2, self.max_backoff_s)
            return False
        self._backoff_s = self.check_interval_s
        self._next_check = time.monotonic() + self.check_interval_s
        if present or not self.kafka.create_topics:
            return False
        self.topics_recreated += 1
        metrics.TOPICS_RECREATED.labels(self.topic).inc()
        return True


class BrokerWatch(TopicWatch):
    """Per consumer loop: logs and counts lost data, recreates the topic when the broker lost it.

    Kafka offsets only grow. So when a partition's highwater falls below an offset this consumer
    committed, or the partition hands back a record below it, the broker lost data (or an
    operator rewound the group by hand). Each such partition is logged once as
    ``broker data loss detected`` and counted in ``emostream_broker_data_loss_total``;
    consumption simply goes on from wherever the broker now is.

    Args:
        kafka: settings used to recreate the topics (``ensure_topics``).
        consumer: the loop's consumer; only its public API is used.
        topic: the topic this loop consumes.
        group: the consumer group, for logs and metrics.
        check_interval_s: how often an idle loop asks the broker whether ``topic`` exists.
        max_backoff_s: cap on the doubling delay between checks that fail (broker down).
        check_timeout_s: a check never blocks the loop longer than this.
    """

    def __init__(
        self,
        kafka: KafkaOptions,
        consumer: AIOKafkaConsumer,
        topic: str,
        group: str,
        check_interval_s: float = 5.0,
        max_backoff_s: float = 30.0,
        check_timeout_s: float = 5.0,
    ) -> None:
        super().__init__(
            kafka, topic, consumer.topics, group, check_interval_s, max_backoff_s, check_timeout_s
        )
        self.group = group
        self._consumer = consumer
        self._committed: dict[TopicPartition, int] = {}
        self.losses = 0

    def committed(self, offsets: dict[TopicPartition, int]) -> None:
        """Record offsets this consumer committed successfully (the next offset to read)."""
        for tp, offset in offsets.items():
            self._committed[tp] = max(self._committed.get(tp, 0), offset)

    def check_offsets(self, records: Iterable = ()) -> int:
        """After each fetch: compare highwaters and fetched offsets with our commits.

        Returns how many partitions were newly found to have lost data. A partition is reported
        once; afterwards its commits are tracked afresh from the broker's new offsets.
        """
        fetched_from: dict[TopicPartition, int] = {}
        for r in records:
            tp = TopicPartition(r.topic, r.partition)
            fetched_from[tp] = min(fetched_from.get(tp, r.offset), r.offset)
        found = 0
        assigned = self._consumer.assignment()
        for tp, committed in list(self._committed.items()):
            # None until a fetch for tp succeeded; aiokafka asserts on partitions not assigned.
            highwater = self._consumer.highwater(tp) if tp in assigned else None
            first = fetched_from.get(tp)
            behind = (highwater is not None and highwater < committed) or (
                first is not None and first < committed
            )
            if not behind:
                continue
            del self._committed[tp]
            found += 1
            self.losses += 1
            metrics.BROKER_DATA_LOSS.labels(self.group, tp.topic).inc()
            log.warning(
                "broker data loss detected",
                topic=tp.topic,
                partition=tp.partition,
                group=self.group,
                committed_offset=committed,
                highwater=highwater,
                fetched_offset=first,
            )
        return found
