"""Helpers of the camera fleet tests: fleet ingests, a frames-topic watch, image folders."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import defaultdict
from pathlib import Path

import cv2
from aiokafka import AIOKafkaConsumer, TopicPartition

from emostream.frames import parse_headers
from emostream.ingest.sources import sample_frames
from emostream.local.servers import ServiceProcess, free_port, settings_env
from emostream.settings import KafkaOptions, RedisOptions


def image_folder(path: Path, n: int = 20) -> Path:
    """``n`` frames of the sample clip (a face drifting, 640x360) as JPEGs in ``path``."""
    path.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(itertools.islice(sample_frames(4 * n), 0, None, 4)):
        cv2.imwrite(str(path / f"f{i:02d}.jpg"), frame)
    return path


def fleet_env(kafka: KafkaOptions, redis: RedisOptions, tag: str, root: Path) -> dict[str, str]:
    return settings_env("kafka", kafka) | {
        "EMOSTREAM_REDIS__URL": redis.url.get_secret_value(),
        "EMOSTREAM_REDIS__KEY_PREFIX": redis.key_prefix,
        "EMOSTREAM_FLEET__CAMERAS_TOPIC": f"cameras-{tag}",
        "EMOSTREAM_FLEET__GROUP_ID": f"fleet-{tag}",
        "EMOSTREAM_FLEET__SOURCE_ROOT": str(root),
        "EMOSTREAM_FLEET__STATUS_INTERVAL_S": "1",
        "EMOSTREAM_FLEET__BACKOFF_MAX_S": "4",
    }


def fleet_ingest(env: dict[str, str], log_path: Path) -> ServiceProcess:
    """A started fleet ingest (``EMOSTREAM_INGEST__SOURCE=fleet``), up once its health port is."""
    port = free_port()
    proc = ServiceProcess(
        "ingest",
        env
        | {
            "EMOSTREAM_INGEST__SOURCE": "fleet",
            "EMOSTREAM_INGEST__METRICS_PORT": str(port),
            "EMOSTREAM_LOG__JSON_OUTPUT": "true",
        },
        log_path,
    )
    return proc.start(port)


class FrameWatch:
    """Every frame of the frames topic from its start: per stream, (captured s, run id, seq)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.frames: dict[str, list[tuple[float, str, int]]] = defaultdict(list)
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> FrameWatch:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
        )
        await consumer.start()
        await consumer._client.force_metadata_update()  # noqa: SLF001 - no public refresh
        parts = consumer.partitions_for_topic(self.topic) or set()
        assert parts, f"no topic {self.topic}"
        consumer.assign([TopicPartition(self.topic, p) for p in parts])
        self._consumer = consumer
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()

    async def _read(self) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=300, max_records=5000)
            for records in batch.values():
                for r in records:
                    meta = parse_headers(r.headers)
                    self.frames[meta.stream_id].append(
                        (meta.captured_ms / 1000, meta.run_id, meta.seq)
                    )

    def since(self, stream_id: str, t: float, until: float | None = None) -> list:
        end = until if until is not None else float("inf")
        return [f for f in self.frames.get(stream_id, []) if t <= f[0] < end]

    def longest_overlap(self, stream_id: str) -> float:
        """Longest time two runs of the stream published together (first to last frame)."""
        spans: dict[str, list[float]] = {}
        for t, run, _ in self.frames.get(stream_id, []):
            span = spans.setdefault(run, [t, t])
            span[0], span[1] = min(span[0], t), max(span[1], t)
        ranges = sorted(spans.values())
        worst = 0.0
        for i, (a0, a1) in enumerate(ranges):
            for b0, b1 in ranges[i + 1 :]:
                worst = max(worst, min(a1, b1) - max(a0, b0))
        return worst


async def wait_for(check, timeout_s: float, what: str, every_s: float = 0.25):
    """``check()`` (sync or async) until truthy; returns (value, seconds taken)."""
    start = time.monotonic()
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value, time.monotonic() - start
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(every_s)
