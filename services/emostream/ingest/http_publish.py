"""Frames received over HTTP to the frames topic, with a bounded number of unacknowledged sends.

Backpressure policy: at most ``max_in_flight`` frames are handed to the Kafka producer and not yet
acknowledged. A frame that finds no room (Kafka slow, producer buffer full) is refused at once
with ``IngestBusy``: the HTTP route answers 429 with ``Retry-After``, the WebSocket keeps a small
drop-oldest queue in front. Nothing here buffers without bound.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from typing import Any

import structlog

from emostream import metrics, tracing
from emostream.capture_clock import DEFAULT_MAX_AHEAD_S, clamp_capture_ms
from emostream.frames import H_CONTENT, FrameMeta, frame_headers
from emostream.kafka.clients import make_producer
from emostream.runtime.component import Component
from emostream.settings import KafkaOptions

log = structlog.get_logger(__name__)
SEND_TIMEOUT_S = 1.0  # aiokafka's send() waits while its buffer is full: that is "busy" too
STOP_FLUSH_S = 10.0


class IngestBusy(Exception):
    """No room for another frame now; retry after ``retry_after_s``."""

    def __init__(self, in_flight: int, retry_after_s: int) -> None:
        super().__init__(f"{in_flight} frames are waiting for Kafka; retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class FramePublisher(Component):
    """Publishes validated frames keyed by stream id, as every ingest source does."""

    def __init__(
        self,
        kafka: KafkaOptions,
        max_in_flight: int,
        retry_after_s: int = 1,
        producer: Any = None,
        max_capture_ahead_s: float = DEFAULT_MAX_AHEAD_S,
    ) -> None:
        self.topic = kafka.frames_topic
        self.max_message_bytes = kafka.max_message_bytes  # what one record may hold
        self.max_capture_ahead_s = max_capture_ahead_s
        self.max_in_flight = max_in_flight
        self.retry_after_s = retry_after_s
        self._producer = producer if producer is not None else make_producer(kafka, "ingest-http")
        self._pending: set[asyncio.Future] = set()
        self._sending = 0  # inside producer.send(): counted, so a full buffer is not a way around
        self._room = asyncio.Event()
        self._room.set()
        # Frames without a client run id share this one: seq restarts, event ids must not.
        self.run_id = uuid.uuid4().hex[:16]
        self.sent = 0
        self.failed = 0

    async def _start(self) -> None:
        await self._producer.start()

    async def _stop(self) -> None:
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=STOP_FLUSH_S)
        await self._producer.stop()

    @property
    def in_flight(self) -> int:
        return self._sending + len(self._pending)

    def has_room(self) -> bool:
        return self.in_flight < self.max_in_flight

    async def wait_for_room(self) -> None:
        """Return once a frame could be published (a send was acknowledged or failed)."""
        while not self.has_room():
            self._room.clear()
            await self._room.wait()

    async def publish(
        self,
        meta: FrameMeta,
        payload: bytes,
        content_type: str,
        trace_parent: tracing.Context | None = None,
    ) -> asyncio.Future:
        """Hand one frame to the producer; the returned future resolves on acknowledgement.

        Raises ``IngestBusy`` when ``max_in_flight`` frames are unacknowledged or the producer
        does not take the frame within ``SEND_TIMEOUT_S``.
        """
        if not self.has_room():
            raise IngestBusy(self.in_flight, self.retry_after_s)
        captured = clamp_capture_ms(meta.captured_ms, self.max_capture_ahead_s, "ingest")
        meta = dataclasses.replace(meta, captured_ms=captured)
        headers = [(k, v) for k, v in frame_headers(meta) if k != H_CONTENT]
        headers.append((H_CONTENT, content_type.encode()))
        traced = tracing.start_publish(headers, meta.stream_id, trace_parent)
        self._sending += 1
        try:
            send = self._producer.send(
                self.topic, payload, key=meta.stream_id.encode(), headers=headers
            )
            fut = await asyncio.wait_for(send, SEND_TIMEOUT_S)
        except TimeoutError:
            raise IngestBusy(self.in_flight, self.retry_after_s) from None
        finally:
            self._sending -= 1
            self._update()
        self._pending.add(fut)
        fut.add_done_callback(traced)
        fut.add_done_callback(lambda f, stream=meta.stream_id: self._on_done(f, stream))
        self._update()
        return fut

    def _update(self) -> None:
        metrics.INGEST_HTTP_IN_FLIGHT.set(self.in_flight)
        if self.has_room():
            self._room.set()

    def _on_done(self, fut: asyncio.Future, stream_id: str) -> None:
        self._pending.discard(fut)
        if fut.cancelled() or fut.exception() is not None:
            self.failed += 1
            metrics.INGEST_HTTP_FRAMES.labels("failed").inc()
            error = "cancelled" if fut.cancelled() else str(fut.exception())
            log.error("frame send failed", error=error)
        else:
            self.sent += 1
            metrics.count_frame_sent(stream_id)
        self._update()

    def new_run_id(self) -> str:
        return uuid.uuid4().hex[:16]
