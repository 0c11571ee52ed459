"""Webhook delivery of alerts: a bounded queue, a few sender tasks, retries with backoff.

Event consumption never waits on a webhook: ``submit`` only enqueues, and a full queue drops the
delivery (counted in ``emostream_webhook_deliveries_total{outcome="dropped"}`` and logged).
Each attempt is signed afresh (``X-Emostream-Timestamp`` is the send time), so a retry passes a
receiver's replay window. The final outcome of every delivery goes to the rule's delivery log.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import structlog

from emostream import metrics
from emostream.schemas import AlertV1
from emostream.services.config import AlertOptions
from emostream.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

log = structlog.get_logger(__name__)

RETRY_STATUSES = {408, 425, 429, 500, 502, 503, 504}
Recorder = Callable[[str, dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Delivery:
    rule_id: str
    url: str
    alert: AlertV1


class WebhookDispatcher:
    """Sends alerts to webhooks; ``start``/``stop`` or ``async with``.

    ``record(rule_id, entry)`` stores each delivery's outcome (the Redis delivery log).
    """

    def __init__(self, options: AlertOptions, record: Recorder,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.options = options
        self._record = record
        self._transport = transport
        self._queue: asyncio.Queue[Delivery] = asyncio.Queue(maxsize=options.webhook_queue_size)
        self._client: httpx.AsyncClient | None = None
        self._tasks: list[asyncio.Task] = []
        self.delivered = 0
        self.failed = 0
        self.dropped = 0

    async def start(self) -> WebhookDispatcher:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.options.webhook_timeout_s,
                                             transport=self._transport, follow_redirects=False)
            self._tasks = [asyncio.create_task(self._run(), name=f"webhook-{i}")
                           for i in range(self.options.webhook_concurrency)]
        return self

    async def stop(self) -> None:
        """Give queued deliveries ``shutdown_grace_s`` to finish, then cancel the rest."""
        if self._client is None:
            return
        try:
            await asyncio.wait_for(self._queue.join(), timeout=self.options.shutdown_grace_s)
        except TimeoutError:
            log.warning("webhook deliveries abandoned at shutdown", pending=self._queue.qsize())
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        client, self._client = self._client, None
        await client.aclose()

    async def __aenter__(self) -> WebhookDispatcher:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def submit(self, rule_id: str, url: str, alert: AlertV1) -> bool:
        """Queue one delivery without waiting; False (dropped, counted) when the queue is full."""
        try:
            self._queue.put_nowait(Delivery(rule_id, url, alert))
        except asyncio.QueueFull:
            self.dropped += 1
            metrics.WEBHOOKS.labels("dropped").inc()
            log.warning("webhook queue full, alert dropped", rule_id=rule_id,
                        alert_id=alert.alert_id, dropped_total=self.dropped)
            return False
        metrics.WEBHOOK_QUEUE.set(self._queue.qsize())
        return True

    async def _run(self) -> None:
        while True:
            item = await self._queue.get()
            metrics.WEBHOOK_QUEUE.set(self._queue.qsize())
            try:
                entry = await self.deliver(item)
                try:
                    await self._record(item.rule_id, entry)
                except Exception as exc:  # noqa: BLE001 - the log is best effort; keep sending
                    log.warning("delivery log write failed", rule_id=item.rule_id, error=str(exc))
            finally:
                self._queue.task_done()

    def _backoff_s(self, attempt: int, retry_after: str | None) -> float:
        cap = self.options.webhook_max_backoff_s
        if retry_after is not None and retry_after.strip().isdigit():
            return min(float(retry_after), cap)
        delay = min(self.options.webhook_backoff_s * 2 ** (attempt - 1), cap)
        return delay * (0.5 + random.random() / 2)  # jitter: receivers recovering see no stampede

    async def deliver(self, item: Delivery) -> dict[str, Any]:
        """POST one alert with retries; returns the delivery-log entry."""
        body = item.alert.model_dump_json().encode()
        entry: dict[str, Any] = {"alert_id": item.alert.alert_id, "url": item.url, "attempts": 0,
                                 "status_code": None, "error": None, "delivered": False,
                                 "delivered_at": None}
        secret = self.options.webhook_secret
        if secret is None:
            entry["error"] = "not sent: EMOSTREAM_ALERTS__WEBHOOK_SECRET is not set"
            return self._finish(entry, item)
        assert self._client is not None
        for attempt in range(1, self.options.webhook_max_attempts + 1):
            entry["attempts"] = attempt
            ts = str(int(time.time()))
            headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: ts,
                       SIGNATURE_HEADER: sign(secret.get_secret_value(), ts, body),
                       "X-Emostream-Alert-Id": item.alert.alert_id,
                       "X-Emostream-Attempt": str(attempt)}
            retry_after = None
            try:
                resp = await self._client.post(item.url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                entry["status_code"], entry["error"] = None, f"{type(exc).__name__}: {exc}"[:300]
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

    def _finish(self, entry: dict[str, Any], item: Delivery) -> dict[str, Any]:
        entry["finished_at"] = datetime.now(UTC).isoformat()
        outcome = "delivered" if entry["delivered"] else "failed"
        metrics.WEBHOOKS.labels(outcome).inc()
        if entry["delivered"]:
            self.delivered += 1
        else:
            self.failed += 1
            log.warning("webhook delivery failed", rule_id=item.rule_id,
                        alert_id=item.alert.alert_id, attempts=entry["attempts"],
                        error=entry["error"])
        return entry
