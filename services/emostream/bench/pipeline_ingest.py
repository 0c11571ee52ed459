"""The pipeline benchmark's cameras in a process of their own, and who used the CPU.

Rendering and JPEG-encoding N streams of frames is real CPU work; in the worker's process it
would also hold the worker's GIL, and the worker's figures would carry it. ``IngestProcess``
runs the streams (the Kafka-producer ``Ingest`` or the HTTP senders) in a spawned process and
shares their counters; ``CpuMeter`` reads how much CPU the worker's process, the ingest process,
the broker and the whole machine used over the measured window (Linux ``/proc``).
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import platform
import time

from emostream.bench.pipeline_http import http_ingests
from emostream.config import IngestOptions
from emostream.ingest.runner import Ingest
from emostream.settings import KafkaOptions

_TICKS_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def make_ingests(
    kafka: KafkaOptions, streams: int, fps: float, kind: str = "kafka"
) -> list[Ingest]:
    """The run's cameras: ``streams`` live streams of the sample clip at ``fps`` each."""
    if kind == "http":
        return http_ingests(kafka, streams, fps)  # POSTs to ingest's HTTP server
    ingests = [
        Ingest(kafka, IngestOptions(source="sample", stream_id=f"cam-{i}", fps=fps, loop=True))
        for i in range(streams)
    ]
    for ing in ingests:
        ing.live = True  # behave as live cameras: stale frames may be dropped (batched mode)
    return ingests


class IngestProcess:
    """``streams`` live cameras at ``fps`` each (``kind``: kafka or http) in a child process;
    duck-types the counters the benchmark reads (``sent``, ``dropped``)."""

    def __init__(self, kafka: KafkaOptions, streams: int, fps: float, kind: str = "kafka") -> None:
        ctx = mp.get_context("spawn")  # no copy of the parent's threads, broker handle or model
        self._counts = ctx.Array("q", 2)  # sent, dropped
        self._stop = ctx.Event()
        self._ready = ctx.Event()
        self.proc = ctx.Process(
            target=_child,
            args=(kafka.model_dump(), streams, fps, kind, self._counts, self._stop, self._ready),
            daemon=True,
            name="bench-ingest",
        )

    async def start(self, timeout_s: float = 60.0) -> IngestProcess:
        self.proc.start()
        if not await asyncio.to_thread(self._ready.wait, timeout_s):
            raise RuntimeError("the ingest process did not start its streams")
        return self

    @property
    def sent(self) -> int:
        return int(self._counts[0])

    @property
    def dropped(self) -> int:
        return int(self._counts[1])

    async def stop(self, timeout_s: float = 30.0) -> None:
        self._stop.set()
        await asyncio.to_thread(self.proc.join, timeout_s)
        if self.proc.is_alive():
            self.proc.kill()
            await asyncio.to_thread(self.proc.join, 5)


class InProcessIngests:
    """The cameras as tasks in this process (``--ingest-in-process``), counted like the child."""

    def __init__(self, ingests: list) -> None:
        self.ingests, self.tasks, self.proc = ingests, [], None

    async def start(self) -> InProcessIngests:
        for ing in self.ingests:
            await ing.start()
        self.tasks = [asyncio.create_task(ing.run()) for ing in self.ingests]
        return self

    @property
    def sent(self) -> int:
        return sum(i.sent for i in self.ingests)

    @property
    def dropped(self) -> int:
        return sum(i.dropped for i in self.ingests)

    async def stop(self) -> None:
        for ing in self.ingests:
            ing.request_stop()
        await asyncio.wait(self.tasks, timeout=30)
        for ing in self.ingests:
            await ing.stop()


def _child(kafka: dict, streams: int, fps: float, kind: str, counts, stop, ready) -> None:
    from emostream.cli.logconfig import configure_logging

    configure_logging("WARNING")  # stderr; the benchmark's stdout is its JSON
    asyncio.run(_run_streams(KafkaOptions(**kafka), streams, fps, kind, counts, stop, ready))


async def _run_streams(kafka, streams, fps, kind, counts, stop, ready) -> None:
    ingests = make_ingests(kafka, streams, fps, kind)
    for ing in ingests:
        await ing.start()
    tasks = [asyncio.create_task(ing.run()) for ing in ingests]
    ready.set()
    while not stop.is_set() and not all(t.done() for t in tasks):
        counts[0] = sum(i.sent for i in ingests)
        counts[1] = sum(i.dropped for i in ingests)
        await asyncio.sleep(0.1)
    for ing in ingests:
        ing.request_stop()
    await asyncio.wait(tasks, timeout=20)
    counts[0] = sum(i.sent for i in ingests)
    counts[1] = sum(i.dropped for i in ingests)
    for ing in ingests:
        await ing.stop()


def process_cpu_s(pid: int | None) -> float | None:
    """User + system CPU seconds of process ``pid`` (all its threads); None where unreadable."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS_S
    except (OSError, IndexError, ValueError):
        return None


def machine_busy_s() -> float | None:
    """CPU seconds the whole machine spent not idle (all cores), from ``/proc/stat``."""
    try:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / _TICKS_S


class CpuMeter:
    """CPU used over a window by named processes and the machine, in cores (1.0 = one core)."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = pids
        self._t0 = time.monotonic()
        self._start = self._read()

    def _read(self) -> dict[str, float | None]:
        out = {name: process_cpu_s(pid) for name, pid in self.pids.items()}
        out["machine"] = machine_busy_s()
        return out

    def cores(self) -> dict[str, float | None]:
        """Mean cores busy per name since the meter was made; ``machine`` counts every process
        (other jobs included), ``cpu_count`` is there to compare with."""
        elapsed = max(time.monotonic() - self._t0, 1e-9)
        end = self._read()
        out: dict[str, float | None] = {}
        for name, v in end.items():
            v0 = self._start.get(name)
            out[name] = None if v is None or v0 is None else round((v - v0) / elapsed, 2)
        out["cpu_count"] = os.cpu_count()
        return out


def cpu_model() -> str:
    """The CPU's model name (``lscpu``'s)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()
