"""WebSocket upload: binary messages, one JPEG or PNG frame each, for continuous capture.

Policy for live cameras: frames wait in a per-connection queue of ``queue_frames``; when Kafka is
slower than the camera, the oldest queued frame is dropped (a fresh frame is worth more than a
late one), each drop is counted in ``/metrics`` and reported to the client in a text message
``{"type": "dropped", "count": N, "total": T}``. A text message ``{"seq": N, "captured_ms": T}``
before a frame sets that frame's metadata (default: the next seq of this connection, now).
Refused frames are reported as ``{"type": "refused", "seq": N, "status": S, "detail": ...}``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque

import structlog
from fastapi import WebSocket

from emostream import metrics
from emostream.frames import MAX_CAPTURED_MS, MAX_SEQ, FrameMeta
from emostream.ingest.http_frames import FrameRefused, check_frame, int_param
from emostream.ingest.http_publish import FramePublisher, IngestBusy

REPORT_EVERY_S = 0.5  # drop reports are batched: one message per half second at most
MESSAGE_TOO_BIG = 1009  # the server closes with it a message over the frame limit
log = structlog.get_logger(__name__)


def _meta_message(text: str) -> tuple[int | None, int | None]:
    try:
        doc = json.loads(text)
    except ValueError:
        raise FrameRefused(422, "text messages must be JSON objects") from None
    if not isinstance(doc, dict):
        raise FrameRefused(422, "text messages must be JSON objects")
    values = [doc.get("seq"), doc.get("captured_ms")]
    raw = [None if v is None else str(v) for v in values]
    return int_param(raw[0], "seq", MAX_SEQ), int_param(raw[1], "captured_ms", MAX_CAPTURED_MS)


class IngestSession:
    """One connection: a reader that queues (dropping the oldest), a publisher, a reporter."""

    def __init__(
        self,
        ws: WebSocket,
        stream_id: str,
        publisher: FramePublisher,
        max_frame_bytes: int,
        queue_frames: int,
    ) -> None:
        self.ws, self.stream_id, self.publisher = ws, stream_id, publisher
        self.max_frame_bytes = max_frame_bytes
        self.queue: deque[tuple[FrameMeta, bytes]] = deque()
        self.queue_frames = queue_frames
        self.run_id = publisher.new_run_id()  # seq starts at 0 per connection: ids must differ
        self.next_seq = 0
        self.dropped = 0
        self._reported = 0
        self._wake = asyncio.Event()
        self._send_lock = asyncio.Lock()

    async def send(self, doc: dict) -> None:
        async with self._send_lock:
            await self.ws.send_text(json.dumps(doc))

    async def run(self) -> None:
        tasks = [asyncio.create_task(t()) for t in (self._receive, self._publish, self._report)]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _receive(self) -> None:
        meta: tuple[int | None, int | None] = (None, None)
        while True:
            msg = await self.ws.receive()
            if msg["type"] == "websocket.disconnect":
                if msg.get("code") == MESSAGE_TOO_BIG:
                    metrics.INGEST_HTTP_FRAMES.labels("refused").inc()
                    log.warning(
                        "websocket frame too big: closed 1009",
                        stream_id=self.stream_id,
                        max_frame_bytes=self.max_frame_bytes,
                    )
                return
            if msg.get("text") is not None:
                try:
                    meta = _meta_message(msg["text"])
                except FrameRefused as exc:
                    await self.send({"type": "refused", "status": exc.status, "detail": exc.detail})
                continue
            seq = self.next_seq if meta[0] is None else meta[0]
            captured = int(time.time() * 1000) if meta[1] is None else meta[1]
            meta, self.next_seq = (None, None), seq + 1
            frame = FrameMeta(self.stream_id, seq, captured, True, self.run_id)
            self.queue.append((frame, msg.get("bytes") or b""))
            if len(self.queue) > self.queue_frames:
                self.queue.popleft()
                self._drop()
            self._wake.set()

    def _drop(self) -> None:
        self.dropped += 1
        metrics.INGEST_HTTP_FRAMES.labels("dropped").inc()
        metrics.count_frame_dropped(self.stream_id, "ingest_queue_full")

    async def _publish(self) -> None:
        while True:
            while not self.queue:
                self._wake.clear()
                await self._wake.wait()
            await self.publisher.wait_for_room()
            if not self.queue:
                continue
            meta, payload = self.queue.popleft()
            try:
                content_type = await check_frame(payload, self.max_frame_bytes)
                await self.publisher.publish(meta, payload, content_type)
            except FrameRefused as exc:
                metrics.INGEST_HTTP_FRAMES.labels("refused").inc()
                await self.send(
                    {"type": "refused", "seq": meta.seq, "status": exc.status, "detail": exc.detail}
                )
                continue
            except IngestBusy:
                # Back to the head of the queue, unless newer frames filled it: then it is the
                # oldest, and the drop policy says it goes.
                if len(self.queue) < self.queue_frames:
                    self.queue.appendleft((meta, payload))
                else:
                    self._drop()
                continue
            metrics.INGEST_HTTP_FRAMES.labels("accepted").inc()

    async def _report(self) -> None:
        while True:
            await asyncio.sleep(REPORT_EVERY_S)
            if self.dropped > self._reported:
                count, self._reported = self.dropped - self._reported, self.dropped
                await self.send({"type": "dropped", "count": count, "total": self.dropped})
