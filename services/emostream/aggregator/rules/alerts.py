"""Rules on the consumed events: evaluate, publish alerts to Kafka, hand webhooks to the dispatcher.

Runs after a batch's events are in Redis and before its offsets are committed. Rules only see
events that were new to the store, so a redelivered batch does not fire twice. Alert ids are
deterministic; a crash between firing and publishing can lose or (after a state write race)
repeat an alert, so alert consumers dedupe on ``alert_id``. A Redis or Kafka failure here is
logged and counted, never allowed to stall event consumption.
"""

from __future__ import annotations

import asyncio
import time

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from redis.exceptions import RedisError

from emostream import metrics
from emostream.aggregator.rules.model import Rule, RuleIndex, evaluate_events, state_key
from emostream.aggregator.rules.store import RuleStore, StateKey
from emostream.aggregator.webhooks.delivery import WebhookDispatcher
from emostream.cloudevents_headers import attrs_for, kafka_headers
from emostream.schemas import AlertV1, EmotionEventV1

log = structlog.get_logger(__name__)
RULES_CACHE_S = 1.0  # a new or deleted rule takes effect within this (deliveries: at once)
_LOGGED = {"rule_id", "stream_id", "track_id", "alert_id"}  # an alert's fields in its log line


class AlertEngine:
    """Evaluates the stored rules on newly stored events."""

    def __init__(
        self,
        rules: RuleStore,
        producer: AIOKafkaProducer,
        topic: str,
        dispatcher: WebhookDispatcher,
    ) -> None:
        self.rules = rules
        self.producer = producer
        self.topic = topic
        self.dispatcher = dispatcher
        self.fired = 0
        self._cached: tuple[list[Rule], RuleIndex] | None = None
        self._cached_at = 0.0

    async def _rules(self) -> tuple[list[Rule], RuleIndex]:
        """The stored rules, read and parsed at most every ``RULES_CACHE_S``."""
        now = time.monotonic()
        if self._cached is None or now - self._cached_at > RULES_CACHE_S:
            rules = await self.rules.list()
            self._cached, self._cached_at = (rules, RuleIndex(rules)), now
        return self._cached

    async def _evaluate(self, events: list[EmotionEventV1]) -> tuple[list[AlertV1], dict]:
        rules, index = await self._rules()
        if not rules:
            return [], {}
        keys: list[StateKey] = list(
            dict.fromkeys(state_key(rule.id, ev) for ev in events for rule in index.for_event(ev))
        )
        states = await self.rules.load_states(keys)
        by_id = {r.id: r for r in rules}
        # Off the event loop: a burst against many rules must not stall /healthz or the API.
        alerts = await asyncio.to_thread(evaluate_events, index, events, states)
        await self.rules.save_states(states, by_id)
        return alerts, by_id

    async def process(self, events: list[EmotionEventV1]) -> list[AlertV1]:
        """Alerts fired by ``events``: published to the alerts topic, webhooks queued."""
        if not events:
            return []
        try:
            alerts, rules = await self._evaluate(events)
        except (RedisError, OSError) as exc:
            metrics.ALERT_ERRORS.labels("evaluate").inc()
            log.error("rule evaluation skipped for a batch", error=str(exc), events=len(events))
            return []
        if not alerts:
            return []
        futures = []
        for alert in alerts:
            metrics.ALERTS.labels(alert.kind).inc()
            log.info("alert", **alert.model_dump(include=_LOGGED))
            sent = await self._send(alert)
            if sent is not None:
                futures.append(sent)
            url = rules[alert.rule_id].webhook_url
            if url:
                self.dispatcher.submit(alert.rule_id, url, alert)
        for result in await asyncio.gather(*futures, return_exceptions=True):
            if isinstance(result, BaseException):
                metrics.ALERT_ERRORS.labels("publish").inc()
                log.error("alert not acknowledged", error=str(result))
        self.fired += len(alerts)
        return alerts

    async def _send(self, alert: AlertV1) -> asyncio.Future | None:
        """Hand ``alert`` to the producer; its delivery future, None if it was refused."""
        try:
            return await self.producer.send(
                self.topic,
                alert.model_dump_json().encode(),
                key=alert.stream_id.encode(),
                headers=[("emostream-schema", b"alert/1"), *kafka_headers(attrs_for(alert))],
            )
        except KafkaError as exc:
            metrics.ALERT_ERRORS.labels("publish").inc()
            log.error("alert not published", alert_id=alert.alert_id, error=str(exc))
            return None
