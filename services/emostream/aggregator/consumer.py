"""Events topic -> Redis -> rules. Invalid events go to the dead-letter topic; offsets commit after
the Redis writes and after the batch's alerts were published (a failed publish is logged, not
retried: re-consuming would not re-fire deduplicated events anyway)."""

from __future__ import annotations

import asyncio
import time

import structlog
from aiokafka.errors import CommitFailedError, IllegalStateError
from pydantic import ValidationError
from redis.exceptions import RedisError

from emostream import metrics
from emostream.aggregator.rules.alerts import AlertEngine
from emostream.aggregator.rules.store import RuleStore
from emostream.aggregator.state.store import EventStore
from emostream.aggregator.webhooks.delivery import WebhookDispatcher
from emostream.config import AggregatorOptions, AlertOptions
from emostream.kafka.broker_watch import BrokerWatch
from emostream.kafka.clients import make_consumer, make_producer, next_offsets
from emostream.kafka.dead_letters import dead_letter_unreadable, send_dead_letter
from emostream.kafka.record_fetch import Unreadable, fetch_batch, past
from emostream.schemas import EmotionEventV1
from emostream.settings import KafkaSettings

log = structlog.get_logger(__name__)


class EventConsumer:
    """Consumes emotion events into the store; ``start``/``stop`` or ``async with``."""

    def __init__(
        self,
        kafka: KafkaSettings,
        options: AggregatorOptions,
        store: EventStore,
        alerts: AlertOptions | None = None,
    ) -> None:
        self.kafka = kafka
        self.options = options
        self.store = store
        self._consumer = make_consumer(kafka, [kafka.events_topic], options.group_id, "aggregator")
        self._producer = make_producer(kafka, "aggregator")
        self.broker_watch = BrokerWatch(kafka, self._consumer, kafka.events_topic, options.group_id)
        rules = RuleStore(store)
        self.webhooks = WebhookDispatcher(
            alerts or AlertOptions(), rules.record_delivery, rule_exists=rules.exists
        )
        self.alerts = AlertEngine(rules, self._producer, kafka.alerts_topic, self.webhooks)
        self._stop = asyncio.Event()
        self._started = False
        self.consumed = 0
        self.stored = 0
        self.dead_letters = 0
        self.last_progress = time.monotonic()
        self.redis_ok = True
        self.max_backoff_s = 10.0

    async def start(self) -> EventConsumer:
        if not self._started:
            await self._producer.start()
            await self._consumer.start()
            await self.webhooks.start()
            self._started = True
        return self

    async def stop(self) -> None:
        self._stop.set()
        if self._started:
            self._started = False
            await self._consumer.stop()
            await self.webhooks.stop()
            await self._producer.stop()

    async def __aenter__(self) -> EventConsumer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def request_stop(self) -> None:
        self._stop.set()

    @property
    def assigned(self) -> bool:
        return bool(self._started and self._consumer.assignment())

    async def run(self) -> None:
        while not self._stop.is_set():
            fetched = await fetch_batch(
                self._consumer, self.options.max_wait_ms, self.options.max_batch_events
            )
            self.last_progress = time.monotonic()
            records = fetched.records
            self.broker_watch.check_offsets(records)
            if records:
                await self.handle(records)
            if fetched.unreadable:  # after the records before them are stored and committed
                await self._skip_unreadable(fetched.unreadable)
            elif not records:
                await self.broker_watch.ensure_topic()

    async def _skip_unreadable(self, unreadable: list[Unreadable]) -> None:
        """Dead-letter records the client cannot parse, then commit past them."""
        await dead_letter_unreadable(self._producer, self.kafka.dlq_topic, unreadable)
        self.dead_letters += len(unreadable)
        log.warning(
            "unreadable records dead-lettered",
            records=[f"{u.topic}/{u.partition}/{u.offset}" for u in unreadable],
        )
        await self._commit(past(unreadable))

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
            except (RedisError, OSError) as exc:
                if self.redis_ok:
                    log.error("redis write failed, retrying", error=str(exc))
                self.redis_ok = False
                if self._stop.is_set():
                    return None
                try:
                    await asyncio.wait_for(self._stop.wait(), timeout=delay)
                except TimeoutError:
                    pass
                delay = min(delay * 2, self.max_backoff_s)

    async def handle(self, records: list) -> None:
        """Parse, store in Redis, dead-letter the invalid ones, run the rules, then commit."""
        events = []
        for r in records:
            try:
                events.append(EmotionEventV1.model_validate_json(r.value or b""))
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
        fresh = await self._store_with_retry(events)
        if fresh is None:  # stopping while Redis is down: leave offsets uncommitted
            return
        metrics.EVENTS_STORED.inc(len(fresh))
        metrics.EVENTS_DUPLICATE.inc(len(events) - len(fresh))
        self.stored += len(fresh)
        await self.alerts.process(fresh)
        self.consumed += len(records)
        await self._commit(next_offsets(records))

    async def _commit(self, offsets) -> None:
        try:
            await self._consumer.commit(offsets)
            self.broker_watch.committed(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            log.warning("commit failed after rebalance", error=str(exc))
