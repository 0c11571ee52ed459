"""One camera of a fleet ingest: its own task and reader thread, paced, reconnecting with back-off.

A camera never disturbs the others of its process: its blocking reads and JPEG encoding run on a
thread of its own (a stalled RTSP read holds only that thread), its unacknowledged sends are
bounded, and every failure (a missing file, a refused connection, a bad codec) is kept in its
status and retried after a wait that doubles up to ``backoff_max_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import numpy as np
import structlog
from aiokafka import AIOKafkaProducer

from emostream import metrics, tracing
from emostream.cameras.model import CameraSpec, check_source, resolved_path
from emostream.errors import ConfigError
from emostream.fleet_options import FleetOptions
from emostream.frames import FrameMeta, encode_frame, frame_headers
from emostream.ingest import fleet_metrics
from emostream.ingest.sources import fit_width, open_source

log = structlog.get_logger(__name__)
_END = object()
MAX_IN_FLIGHT = 8  # per camera
DEFAULT_WIDTH_PX = 1280


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Camera:
    """Runs ``spec`` until ``stop()``; ``spec`` may be replaced while it runs (not its source)."""

    def __init__(
        self,
        spec: CameraSpec,
        producer: AIOKafkaProducer,
        topic: str,
        fleet: FleetOptions,
        jpeg_quality: int = 85,
    ) -> None:
        self.spec = spec
        self.producer = producer
        self.topic = topic
        self.fleet = fleet
        self.jpeg_quality = jpeg_quality
        self.run_id = uuid.uuid4().hex[:16]  # one per run: frames of two runs never collide
        self.seq = self.sent = self.failed = self.reconnects = 0
        self.connected = False
        self.state = "starting"
        self.last_error: str | None = None
        self.error_since: str | None = None
        self._sent_at_status = (0, time.monotonic())
        self._next_at = 0.0  # when the next frame is due (monotonic)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix=f"camera-{spec.stream_id[:24]}")
        self._task: asyncio.Task | None = None
        self.partition: object = None  # the registry partition it came from (set by its fleet)

    @property
    def stream_id(self) -> str:
        return self.spec.stream_id

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"camera {self.stream_id}")

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Cancel the camera's task; its thread ends after the read in hand (never waited on)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError, Exception):
                await asyncio.wait_for(self._task, timeout_s)
        self._thread.shutdown(wait=False, cancel_futures=True)
        self.state = "stopped"

    def status(self, ingest_id: str) -> dict:
        sent, at = self._sent_at_status
        now = time.monotonic()
        fps = (self.sent - sent) / max(now - at, 1e-3)
        self._sent_at_status = (self.sent, now)
        return {
            "stream_id": self.stream_id,
            "ingest": ingest_id,
            "run_id": self.run_id,
            "state": self.state,
            "connected": self.connected,
            "fps": round(fps, 2),
            "frames": self.sent,
            "failed_sends": self.failed,
            "reconnects": self.reconnects,
            "last_error": self.last_error,
            "error_since": self.error_since,
            "updated_at": _now_iso(),
        }

    async def _run(self) -> None:
        backoff = self.fleet.backoff_min_s
        while True:
            try:
                if await self._stream():
                    backoff = self.fleet.backoff_min_s
                    continue
                self.state = "ended"
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - one camera's failure stays its own
                self._failed(exc)
            if self.connected:  # it delivered frames before failing: retry soon
                backoff = self.fleet.backoff_min_s
            self.connected = False
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.fleet.backoff_max_s)
            self.reconnects += 1
            fleet_metrics.RECONNECTS.inc()

    def _failed(self, exc: Exception) -> None:
        message = f"{type(exc).__name__}: {exc}"[:500]
        if message != self.last_error or self.state != "error":
            self.error_since = _now_iso()
            log.warning("camera failed", stream_id=self.stream_id, error=message)
        self.last_error = message
        self.state = "error"

    async def _in_thread(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    async def _open(self) -> tuple[Iterator[np.ndarray], bool, bool]:
        """The source's frames, whether it is a feed (a URL or webcam: its end is a drop) and
        whether its frames are live; raises when it may not or cannot be read."""
        kind = check_source(self.spec.source, self.fleet, resolve=True)
        source = resolved_path(self.spec.source, self.fleet) if kind == "path" else self.spec.source
        frames = await self._in_thread(open_source, source)
        feed = kind in ("url", "webcam")
        return frames, feed, self.spec.live if self.spec.live is not None else feed

    async def _stream(self) -> bool:
        """One pass of the source; True: go on at once (a file's end with ``loop``)."""
        frames, feed, live = await self._open()
        pending: set[asyncio.Future] = set()
        got = 0
        next_at = max(self._next_at, time.monotonic())  # a looping file keeps its pace
        try:
            while True:
                frame = await self._in_thread(next, frames, _END)
                if frame is _END:
                    break
                got += 1
                self.connected, self.state = True, "running"
                period_s = 1.0 / self.spec.fps  # read each frame: a PATCH applies at once
                delay = next_at - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif live and -delay > period_s:
                    metrics.count_frame_dropped(self.stream_id, "behind")
                    next_at = time.monotonic() + period_s
                    continue
                next_at = max(next_at + period_s, time.monotonic() - period_s)
                self._next_at = next_at
                await self._publish(frame, live, pending)
        finally:
            self._thread.submit(getattr(frames, "close", lambda: None))
            if pending:
                await asyncio.wait(pending, timeout=10)
        if not got:
            raise ConfigError(f"source {self.spec.source!r} yielded no frame")
        if feed:
            raise ConnectionError("the stream ended")
        return self.spec.loop

    async def _publish(self, frame: np.ndarray, live: bool, pending: set[asyncio.Future]) -> None:
        width = self.spec.resize or DEFAULT_WIDTH_PX
        payload = await self._in_thread(
            lambda: encode_frame(fit_width(frame, width), self.jpeg_quality)
        )
        meta = FrameMeta(self.stream_id, self.seq, int(time.time() * 1000), live, self.run_id)
        self.seq += 1
        headers = frame_headers(meta)
        traced = tracing.start_publish(headers, self.stream_id)
        fut = await self.producer.send(
            self.topic, payload, key=self.stream_id.encode(), headers=headers
        )
        fut.add_done_callback(traced)
        pending.add(fut)
        fut.add_done_callback(self._on_done)
        fut.add_done_callback(pending.discard)
        if len(pending) >= MAX_IN_FLIGHT:
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)

    def _on_done(self, fut: asyncio.Future) -> None:
        if fut.cancelled() or fut.exception() is not None:
            self.failed += 1
        else:
            self.sent += 1
            metrics.count_frame_sent(self.stream_id)
