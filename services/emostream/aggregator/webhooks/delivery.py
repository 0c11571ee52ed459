"""Webhook delivery of alerts: a bounded queue, a few sender tasks, retries with backoff.

Event consumption never waits on a webhook: ``submit`` only enqueues, and a full queue drops the
delivery (counted in ``emostream_webhook_deliveries_total{outcome="dropped"}`` and logged).
Each attempt is signed afresh (Standard Webhooks: ``webhook-timestamp`` is the send time), so a
retry passes a receiver's replay window. The final outcome of every delivery goes to the
rule's delivery log. Any exception in a delivery is a failed delivery; a sender task that dies
all the same is logged, counted and shown in ``/healthz`` (503) and
``emostream_webhook_senders_alive``.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import structlog

from emostream import metrics, tracing
from emostream.aggregator.webhooks.attempt import (
    RETRY_STATUSES,
    Delivery,
    error_text,
    new_entry,
    signed_headers,
)
from emostream.aggregator.webhooks.guard import REFUSED, guarded_transport
from emostream.aggregator.webhooks.urls import parse_webhook_url
from emostream.config import AlertOptions
from emostream.runtime.component import Component
from emostream.schemas import AlertV1

log = structlog.get_logger(__name__)

Recorder = Callable[[str, dict[str, Any]], Awaitable[None]]
__all__ = ["Delivery", "Recorder", "WebhookDispatcher"]


class WebhookDispatcher(Component):
    """Sends alerts to webhooks; ``start``/``stop`` or ``async with``.

    ``record(rule_id, entry)`` stores each delivery's outcome (the Redis delivery log).
    """

    def __init__(
        self,
        options: AlertOptions,
        record: Recorder,
        transport: httpx.AsyncBaseTransport | None = None,
        rule_exists: Callable[[str], Awaitable[bool]] | None = None,
    ) -> None:
        self.options = options
        self._record = record
        self._rule_exists = rule_exists
        self._transport = transport
        self._queue: asyncio.Queue[Delivery] = asyncio.Queue(maxsize=options.webhook_queue_size)
        self._client: httpx.AsyncClient | None = None
        self._tasks: list[asyncio.Task] = []
        self.delivered = 0
        self.failed = 0
        self.dropped = 0
        self.senders_died = 0
        self._parked: dict[str, deque[Delivery]] = {}  # rules being delivered -> waiting behind
        self._parked_total = 0

    async def _start(self) -> None:
        transport = self._transport or guarded_transport(self.options.webhook_allow_networks)
        self._client = httpx.AsyncClient(
            timeout=self.options.webhook_timeout_s, transport=transport, follow_redirects=False
        )
        self._tasks = [
            asyncio.create_task(self._run(), name=f"webhook-{i}")
            for i in range(self.options.webhook_concurrency)
        ]
        for task in self._tasks:
            task.add_done_callback(self._sender_ended)
        metrics.WEBHOOK_SENDERS.set(self.senders_alive)

    @property
    def senders_alive(self) -> int:
        return sum(not t.done() for t in self._tasks)

    def health(self) -> dict[str, Any]:
        """For ``/healthz``: senders running vs configured, deliveries pending."""
        return {
            "senders_alive": self.senders_alive,
            "senders": len(self._tasks),
            "queued": self._queue.qsize() + self._parked_total,
            "ok": self.senders_alive == len(self._tasks),
        }

    def _sender_ended(self, task: asyncio.Task) -> None:
        metrics.WEBHOOK_SENDERS.set(self.senders_alive)
        if task.cancelled() or self._client is None:
            return
        exc = task.exception()
        self.senders_died += 1
        metrics.WEBHOOK_SENDERS_DIED.inc()
        log.error(
            "webhook sender died",
            task=task.get_name(),
            alive=self.senders_alive,
            error=f"{type(exc).__name__}: {exc}" if exc else "returned",
        )

    async def _stop(self) -> None:
        """Give queued deliveries ``shutdown_grace_s`` to finish, then cancel the rest."""
        if self._client is None:
            return
        try:
            await asyncio.wait_for(self._queue.join(), timeout=self.options.shutdown_grace_s)
        except TimeoutError:
            log.warning(
                "webhook deliveries abandoned at shutdown",
                pending=self._queue.qsize() + self._parked_total,
            )
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        client, self._client = self._client, None
        await client.aclose()

    def submit(self, rule_id: str, url: str, alert: AlertV1) -> bool:
        """Queue one delivery without waiting; False (dropped, counted) when the queue is full."""
        try:
            self._queue.put_nowait(Delivery(rule_id, url, alert, tracing.current()))
        except asyncio.QueueFull:
            self._drop(Delivery(rule_id, url, alert), "webhook queue full, alert dropped")
            return False
        metrics.WEBHOOK_QUEUE.set(self._queue.qsize())
        return True

    async def _run(self) -> None:
        """One sender. A rule is served by one sender at a time: a delivery for a rule that is
        already being delivered waits behind it (parked), so a slow receiver holds up only its
        own rule's deliveries and at most one sender."""
        while True:
            item = await self._queue.get()
            metrics.WEBHOOK_QUEUE.set(self._queue.qsize())
            parked = self._parked.get(item.rule_id)
            if parked is not None:
                if self._parked_total >= self.options.webhook_queue_size:
                    self._queue.task_done()
                    self._drop(item, "webhook backlog of a slow rule full, alert dropped")
                else:
                    parked.append(item)  # task_done once it is delivered
                    self._parked_total += 1
                continue
            self._parked[item.rule_id] = parked = deque()
            try:
                while True:
                    await self._deliver_and_record(item)
                    self._queue.task_done()
                    if not parked:
                        break
                    item = parked.popleft()
                    self._parked_total -= 1
            finally:
                self._parked.pop(item.rule_id, None)

    async def _still_wanted(self, item: Delivery) -> bool:
        """False once the rule is deleted (checked before every attempt, retries included)."""
        if self._rule_exists is None:
            return True
        try:
            return await self._rule_exists(item.rule_id)
        except Exception as exc:  # noqa: BLE001 - Redis away: deliver rather than lose it
            log.warning("rule existence check failed", rule_id=item.rule_id, error=str(exc))
            return True

    async def _deliver_and_record(self, item: Delivery) -> None:
        try:
            entry = await self.deliver(item)
        except Exception as exc:  # noqa: BLE001 - a failed delivery, never a dead sender
            entry = self._finish(
                new_entry(item) | {"error": f"{type(exc).__name__}: {exc}"[:300]}, item
            )
        if entry.pop("deleted", False):
            return  # nothing to log: the rule and its delivery log are gone
        try:
            await self._record(item.rule_id, entry)
        except Exception as exc:  # noqa: BLE001 - the log is best effort; keep sending
            log.warning("delivery log write failed", rule_id=item.rule_id, error=str(exc))

    def _drop(self, item: Delivery, message: str) -> None:
        self.dropped += 1
        metrics.WEBHOOKS.labels("dropped").inc()
        log.warning(
            message, rule_id=item.rule_id, alert_id=item.alert.alert_id, dropped_total=self.dropped
        )

    def _backoff_s(self, attempt: int, retry_after: str | None) -> float:
        cap = self.options.webhook_max_backoff_s
        if retry_after is not None and retry_after.strip().isdigit():
            return min(float(retry_after), cap)
        delay = min(self.options.webhook_backoff_s * 2 ** (attempt - 1), cap)
        return delay * (0.5 + random.random() / 2)  # jitter: receivers recovering see no stampede

    async def deliver(self, item: Delivery) -> dict[str, Any]:
        """POST one alert with retries; returns the delivery-log entry. One ``webhook delivery``
        span in the alert's trace; each request carries its ``traceparent``."""
        kind = tracing.trace.SpanKind.CLIENT
        with tracing.child_span("webhook delivery", item.trace, kind, rule_id=item.rule_id):
            return await self._deliver(item)

    async def _deliver(self, item: Delivery) -> dict[str, Any]:
        body = item.alert.model_dump_json().encode()
        entry = new_entry(item)
        secrets = self.options.signing_secrets()
        if not secrets:
            entry["error"] = "not sent: EMOSTREAM_ALERTS__WEBHOOK_SECRET is not set"
            return self._finish(entry, item)
        try:
            url = parse_webhook_url(item.url)  # rules stored before URLs were validated
        except ValueError as exc:
            entry["error"] = f"not sent: {exc}"
            return self._finish(entry, item)
        assert self._client is not None
        for attempt in range(1, self.options.webhook_max_attempts + 1):
            if not await self._still_wanted(item):
                entry["error"] = "not sent: the rule was deleted"
                entry["deleted"] = True
                return self._finish(entry, item)
            entry["attempts"] = attempt
            headers = signed_headers(secrets, item, attempt, body)
            retry_after = None
            try:
                resp = await self._post(url, body, headers)
            except (httpx.HTTPError, TimeoutError) as exc:
                entry["status_code"], entry["error"] = None, error_text(exc, self.options)
                if REFUSED in entry["error"]:
                    break  # the address will not become allowed by retrying
            else:
                entry["status_code"] = resp.status_code
                if resp.is_success:
                    entry["error"] = None
                    entry["delivered"] = True
                    entry["delivered_at"] = datetime.now(UTC).isoformat()
                    return self._finish(entry, item)
                entry["error"] = f"HTTP {resp.status_code}"
                if resp.status_code not in RETRY_STATUSES:
                    break  # the receiver refused it (e.g. 401 bad signature): retrying won't help
                retry_after = resp.headers.get("retry-after")
            if attempt < self.options.webhook_max_attempts:
                await asyncio.sleep(self._backoff_s(attempt, retry_after))
        return self._finish(entry, item)

    async def _post(self, url: httpx.URL, body: bytes, headers: dict[str, str]) -> httpx.Response:
        """One attempt within ``webhook_timeout_s`` in all (connect, send, wait for the status
        line); the response body is never read, so a huge or endless one costs nothing."""
        assert self._client is not None
        async with asyncio.timeout(self.options.webhook_timeout_s):
            async with self._client.stream("POST", url, content=body, headers=headers) as resp:
                return resp

    def _finish(self, entry: dict[str, Any], item: Delivery) -> dict[str, Any]:
        entry["finished_at"] = datetime.now(UTC).isoformat()
        if entry.get("deleted"):
            metrics.WEBHOOKS.labels("cancelled").inc()
            log.info(
                "webhook delivery cancelled: rule deleted",
                rule_id=item.rule_id,
                alert_id=item.alert.alert_id,
            )
            return entry
        outcome = "delivered" if entry["delivered"] else "failed"
        metrics.WEBHOOKS.labels(outcome).inc()
        if entry["delivered"]:
            self.delivered += 1
        else:
            self.failed += 1
            log.warning(
                "webhook delivery failed",
                rule_id=item.rule_id,
                alert_id=item.alert.alert_id,
                attempts=entry["attempts"],
                error=entry["error"],
            )
        return entry
