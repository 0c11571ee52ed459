"""The ingest component: read a source at a target fps, publish JPEG frames keyed by stream id."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import numpy as np
import structlog

from emostream import metrics, tracing
from emostream.config import IngestOptions
from emostream.errors import ConfigError
from emostream.frames import FrameMeta, encode_frame, frame_headers, validate_stream_id
from emostream.ingest.sources import default_stream_id, fit_width, is_live, open_source
from emostream.kafka.broker_watch import TopicWatch
from emostream.kafka.clients import make_producer
from emostream.runtime.component import Component
from emostream.runtime.health import progress_check
from emostream.settings import KafkaOptions

log = structlog.get_logger(__name__)
_END = object()


class Ingest(Component):
    """Publishes frames until the source ends (forever with ``loop``/live sources) or ``stop()``."""

    def __init__(self, kafka: KafkaOptions, options: IngestOptions) -> None:
        self.kafka = kafka
        self.options = options
        self.stream_id = validate_stream_id(options.stream_id or default_stream_id(options.source))
        self.live = is_live(options.source)  # frame policy: live frames may be dropped when late
        self._reconnects = self.live  # the source itself is a feed that can drop
        self._producer = make_producer(kafka, "ingest")
        self._stop_requested = asyncio.Event()
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self.seq = 0
        # seq restarts at 0 with each run; the run id in every frame keeps event ids unique.
        self.run_id = uuid.uuid4().hex[:16]
        self.last_progress = time.monotonic()
        # A broker that lost the topic may still acknowledge sends to it (Tansu does): look.
        self.topic_watch = TopicWatch(kafka, kafka.frames_topic, self._broker_topics, "ingest")

    async def _start(self) -> None:
        await self._producer.start()

    async def _stop(self) -> None:
        self._stop_requested.set()
        await self._producer.stop()

    async def _broker_topics(self) -> set[str]:
        metadata = await self._producer.client.fetch_all_metadata()
        return set(metadata.topics())

    async def _watch_topics(self) -> None:
        while not self._stop_requested.is_set():
            if await self.topic_watch.ensure_topic():
                await self._producer.client.force_metadata_update()
            await asyncio.sleep(1.0)

    def liveness(self, timeout_s: float):
        """``/livez`` check: a frame was read (sent or dropped) within ``timeout_s``."""
        return progress_check(lambda: self.last_progress, time.monotonic, timeout_s)

    def readiness(self) -> tuple[bool, dict]:
        """``/readyz`` check: the producer is connected."""
        return self.started, {"sent": self.sent, "failed": self.failed, "dropped": self.dropped}

    def request_stop(self) -> None:
        self._stop_requested.set()

    def _frames(self) -> Iterator[np.ndarray]:
        while True:
            got = 0
            for frame in open_source(self.options.source):
                got += 1
                yield frame
            if not got and not self._reconnects:
                # A file or folder that decodes to nothing would otherwise loop forever, silently.
                raise ConfigError(
                    f"source {self.options.source!r} yielded no frame: not a video "
                    "or image OpenCV can decode"
                )
            if not (self.options.loop or self._reconnects) or self._stop_requested.is_set():
                return
            if self._reconnects:
                log.warning("source ended, reconnecting", source=self.options.source)
                time.sleep(self.options.reconnect_delay_s)

    async def run(self) -> None:
        """Pace to ``fps``; at most ``max_in_flight`` unacknowledged sends."""
        opts = self.options
        period_s = 1.0 / opts.fps
        frames = self._frames()
        pending: set[asyncio.Future] = set()
        next_at = time.monotonic()
        run_log = log.bind(stream_id=self.stream_id, run_id=self.run_id)
        run_log.info("ingest started", source=opts.source, fps=opts.fps)
        watch = asyncio.create_task(self._watch_topics())
        try:
            while not self._stop_requested.is_set():
                if opts.max_frames is not None and self.seq >= opts.max_frames:
                    break
                frame = await asyncio.to_thread(next, frames, _END)
                self.last_progress = time.monotonic()
                if frame is _END:
                    break
                delay = next_at - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif self.live and -delay > period_s:
                    # Live cameras: we are behind; drop this frame rather than lag further.
                    self.dropped += 1
                    metrics.count_frame_dropped(self.stream_id, "behind")
                    next_at = time.monotonic() + period_s
                    continue
                next_at = max(next_at + period_s, time.monotonic() - period_s)
                await self._publish(frame, pending)
            if pending:
                await asyncio.wait(pending, timeout=30)
        finally:
            watch.cancel()
            counts = {"sent": self.sent, "failed": self.failed, "dropped": self.dropped}
            run_log.info("ingest finished", **counts)

    async def _publish(self, frame: np.ndarray, pending: set[asyncio.Future]) -> None:
        """Send ``frame``; wait while ``max_in_flight`` sends are unacknowledged."""
        fut = await self._send(frame)
        pending.add(fut)
        fut.add_done_callback(self._on_done)
        fut.add_done_callback(pending.discard)
        if len(pending) >= self.options.max_in_flight:
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)

    async def _send(self, frame: np.ndarray) -> asyncio.Future:
        """Encode ``frame`` off the loop and hand it to the producer; the future is the ack."""
        opts = self.options
        payload = await asyncio.to_thread(
            lambda f=frame: encode_frame(fit_width(f, opts.max_width_px), opts.jpeg_quality)
        )
        meta = FrameMeta(self.stream_id, self.seq, int(time.time() * 1000), self.live, self.run_id)
        self.seq += 1
        headers = frame_headers(meta)
        traced = tracing.start_publish(headers, self.stream_id)
        fut = await self._producer.send(
            self.kafka.frames_topic, payload, key=self.stream_id.encode(), headers=headers
        )
        fut.add_done_callback(traced)
        return fut

    def _on_done(self, fut: asyncio.Future) -> None:
        if fut.cancelled() or fut.exception() is not None:
            self.failed += 1
            log.error("frame send failed", stream_id=self.stream_id, error=str(fut.exception()))
        else:
            self.sent += 1
            metrics.count_frame_sent(self.stream_id)
