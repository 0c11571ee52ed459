"""HTTP ingest for `emostream bench pipeline --ingest http`: the same streams, POSTed to ingest's
HTTP server instead of produced to Kafka by `Ingest`.

Each stream is a client that encodes the sample clip's frames at ``fps`` (as `Ingest` does) and
POSTs them one at a time to ``/v1/streams/{id}/frames``, which validates (decodes) each frame and
answers once Kafka acknowledged it. A client behind its schedule by more than a frame skips one,
as a live `Ingest` does; a 429 counts as dropped. The senders duck-type `Ingest` (``start``,
``run``, ``request_stop``, ``stop``, ``sent``, ``dropped``) so the benchmark loop is shared.
"""

from __future__ import annotations

import asyncio
import time

import httpx

from emostream.config import IngestHttpOptions, IngestOptions
from emostream.frames import encode_frame
from emostream.ingest.http_app import create_ingest_app
from emostream.ingest.http_publish import FramePublisher
from emostream.ingest.sources import sample_frames
from emostream.local.servers import free_port
from emostream.runtime.lifecycle import ApiServer
from emostream.settings import KafkaOptions

JPEG_QUALITY = 85  # IngestOptions' default, as the Kafka-producer ingest publishes


class HttpIngestServer:
    """One ingest HTTP server for all the senders of a run; up while any sender is started."""

    def __init__(self, kafka: KafkaOptions, max_in_flight: int = 256) -> None:
        self.port = free_port()
        http = IngestHttpOptions(port=self.port, max_in_flight_frames=max_in_flight)
        self.publisher = FramePublisher(kafka, max_in_flight)
        self.app = create_ingest_app(self.publisher, IngestOptions(http=http))
        self._server: ApiServer | None = None
        self._users = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def acquire(self) -> None:
        if self._users == 0:
            await self.publisher.start()
            self._server = await ApiServer(self.app, "127.0.0.1", self.port, "bench ingest").start()
        self._users += 1

    async def release(self) -> None:
        self._users -= 1
        if self._users == 0 and self._server is not None:
            await self._server.stop()
            self._server = None
            await self.publisher.stop()


class HttpStreamSender:
    """One camera over HTTP, duck-typing `Ingest` for the benchmark."""

    def __init__(self, server: HttpIngestServer, stream_id: str, fps: float) -> None:
        self.server, self.stream_id, self.period_s = server, stream_id, 1.0 / fps
        self.live = True
        self.sent = self.dropped = self.failed = self.seq = 0
        self._stop = asyncio.Event()
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> HttpStreamSender:
        await self.server.acquire()
        self._client = httpx.AsyncClient(base_url=self.server.url, timeout=30)
        return self

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
            await self.server.release()

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        path = f"/v1/streams/{self.stream_id}/frames"
        next_at = time.monotonic()
        for frame in _clip_forever():
            if self._stop.is_set():
                return
            delay = next_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            elif -delay > self.period_s:  # behind: skip a frame rather than lag further
                self.dropped += 1
                next_at = time.monotonic() + self.period_s
                continue
            next_at = max(next_at + self.period_s, time.monotonic() - self.period_s)
            jpeg = await asyncio.to_thread(encode_frame, frame, JPEG_QUALITY)
            headers = {"X-Emostream-Seq": str(self.seq), "X-Emostream-Captured-Ms": str(_now_ms())}
            self.seq += 1
            r = await self._client.post(path, content=jpeg, headers=headers)
            if r.status_code == 202:
                self.sent += 1
            elif r.status_code == 429:
                self.dropped += 1
            else:
                self.failed += 1


def _clip_forever():
    """The sample clip, looped, rendered frame by frame as the Kafka ingest's source does."""
    while True:
        yield from sample_frames(120)


def _now_ms() -> int:
    return int(time.time() * 1000)


def http_ingests(kafka: KafkaOptions, streams: int, fps: float) -> list[HttpStreamSender]:
    """``streams`` HTTP cameras sharing one ingest HTTP server."""
    server = HttpIngestServer(kafka)
    return [HttpStreamSender(server, f"cam-{i}", fps) for i in range(streams)]
