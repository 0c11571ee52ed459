"""Events topic -> Redis -> rules. Invalid events go to the dead-letter topic; offsets commit after
the Redis writes and after the batch's alerts were published (a failed publish is logged, not
retried: re-consuming would not re-fire deduplicated events anyway)."""

from __future__ import annotations

import structlog
from pydantic import ValidationError
from redis.exceptions import RedisClusterException, RedisError

from emostream import metrics, tracing
from emostream.aggregator.feeds import FeedStore
from emostream.aggregator.rules.alerts import AlertEngine
from emostream.aggregator.rules.store import RuleStore
from emostream.aggregator.state.store import EventStore
from emostream.aggregator.webhooks.delivery import WebhookDispatcher
from emostream.capture_clock import clamp_captures
from emostream.config import AggregatorOptions, AlertOptions
from emostream.kafka.batch_consumer import BatchConsumer
from emostream.kafka.clients import next_offsets
from emostream.kafka.dead_letters import send_dead_letter
from emostream.schemas import EmotionEventV1
from emostream.settings import KafkaOptions

log = structlog.get_logger(__name__)


class EventConsumer(BatchConsumer):
    """Consumes emotion events into the store; ``start``/``stop`` or ``async with``.

    The consume loop, commits and rebalance handling are ``BatchConsumer``'s; this adds
    ``handle``: validate, store, run the rules, then commit.
    """

    def __init__(
        self,
        kafka: KafkaOptions,
        options: AggregatorOptions,
        store: EventStore,
        alerts: AlertOptions | None = None,
    ) -> None:
        batching = {"max_wait_ms": options.max_wait_ms, "max_records": options.max_batch_events}
        super().__init__(kafka, kafka.events_topic, options.group_id, "aggregator", **batching)
        self.options = options
        self.store = store
        rules = RuleStore(store.redis, store.key_prefix, store.retention)
        self.webhooks = WebhookDispatcher(
            alerts or AlertOptions(), rules.record_delivery, rule_exists=rules.exists
        )
        self.alerts = AlertEngine(rules, self._producer, kafka.alerts_topic, self.webhooks)
        self.feeds = FeedStore(store.redis, store.key_prefix, store.retention)
        self.consumed = 0
        self.stored = 0
        self.redis_ok = True
        self.max_backoff_s = 10.0

    async def _start(self) -> None:
        await super()._start()
        await self.webhooks.start()

    async def _stop(self) -> None:
        self.request_stop()
        await self._consumer.stop()
        await self.webhooks.stop()
        await self._producer.stop()

    @property
    def assigned(self) -> bool:
        return bool(self.assignment())

    async def _store_with_retry(self, events: list[EmotionEventV1]) -> list[EmotionEventV1] | None:
        """Write to Redis, retrying with capped exponential backoff while it is down.

        Offsets are not committed until the write succeeds, so nothing is lost; consumption
        pauses meanwhile (backpressure) and the health endpoint reports not-ready.
        """
        delay = 0.2
        while True:
            try:
                fresh = await self.store.add_new_events(events)
                if not self.redis_ok:
                    log.info("redis back, resuming")
                self.redis_ok = True
                return fresh
            except (RedisError, RedisClusterException, OSError) as exc:  # cluster: no node yet
                if self.redis_ok:
                    log.error("redis write failed, retrying", error=str(exc))
                self.redis_ok = False
                if self.stopping:
                    return None
                await self.wait_stop(delay)
                delay = min(delay * 2, self.max_backoff_s)

    async def _feed(self, fresh: list[EmotionEventV1]) -> None:
        """Rules, then the per-stream change and alert feeds (best effort, like the alerts)."""
        alerts = await self.alerts.process(fresh)
        try:
            await self.feeds.add_changes(fresh)
            await self.feeds.add_alerts(alerts)
        except (RedisError, OSError) as exc:
            log.error("change/alert feed write skipped", error=str(exc), events=len(fresh))

    async def handle(self, records: list) -> None:
        """Parse, store in Redis, dead-letter the invalid ones, run the rules, then commit."""
        events, traced = [], []
        for r in records:
            try:
                # Unknown fields are ignored (a newer producer's optional ones, docs/EVENTS.md).
                events.append(EmotionEventV1.model_validate_json(r.value or b"", extra="ignore"))
                traced.append(tracing.header(r.headers))
            except ValidationError as exc:
                self.dead_letters += 1
                await send_dead_letter(
                    self._producer,
                    self.kafka.dlq_topic,
                    source_topic=r.topic,
                    partition=r.partition,
                    offset=r.offset,
                    value=r.value,
                    headers=list(r.headers or []),
                    reason="invalid_event",
                    detail=str(exc).splitlines()[0] if str(exc) else "validation error",
                    stream_id=(r.key or b"").decode(errors="replace")[:128] or None,
                    max_bytes=self.kafka.max_message_bytes,
                )
        events = clamp_captures(events, self.options.max_capture_ahead_s, "aggregator")
        with tracing.store_span(traced):  # alerts' webhooks made inside join the trace
            with metrics.STORE_SECONDS.time():
                fresh = await self._store_with_retry(events)
            if fresh is None:  # stopping while Redis is down: leave offsets uncommitted
                return
            metrics.EVENTS_STORED.inc(len(fresh))
            metrics.EVENTS_DUPLICATE.inc(len(events) - len(fresh))
            self.stored += len(fresh)
            await self._feed(fresh)
        self.consumed += len(records)
        await self.commit(next_offsets(records))
