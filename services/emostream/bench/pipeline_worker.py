"""The worker under `emostream bench pipeline`: its topics, its processor per mode, and a wrapper
that records what the benchmark measures."""

from __future__ import annotations

from emostream.config import WorkerSettings
from emostream.local.servers import TansuBroker
from emostream.settings import KafkaOptions
from emostream.worker.main import build_processor
from emostream.worker.processing import FrameProcessor


class RecordingProcessor:
    """Wraps the worker's processor; records each event's end-to-end latency and the frames."""

    def __init__(self, inner: FrameProcessor) -> None:
        self.inner = inner
        self.latencies_ms: list[int] = []
        self.frames_done = 0
        self.recording = True

    @property
    def model_info(self):
        return self.inner.model_info

    def process(self, frames):
        return self.finish(self.prepare(frames))

    def prepare(self, frames):
        return self.inner.prepare(frames)

    def finish(self, prepared):
        result = self.inner.finish(prepared)
        if self.recording:
            self.latencies_ms += [e.latency_ms for e in result.events if e.latency_ms is not None]
            self.frames_done += result.frames_ok
        return result

    def close(self) -> None:
        self.inner.close()


def kafka_options(broker: TansuBroker, tag: str, streams: int) -> KafkaOptions:
    """Topics of this run's own."""
    return KafkaOptions(
        bootstrap_servers=broker.bootstrap,
        frames_topic=f"bench-frames-{tag}",
        events_topic=f"bench-events-{tag}",
        dlq_topic=f"bench-dlq-{tag}",
        topic_partitions=max(streams, 1),
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )


def mode_processor(settings: WorkerSettings, mode: str, max_age_ms: int) -> FrameProcessor:
    """The worker's processor as ``mode`` configures it (see the module docstring)."""
    naive = mode == "naive"
    if naive:
        # The worker before batching: eager torch, fp32, one detection thread.
        settings.model.dtype = "fp32"
        settings.model.runtime = settings.detector.runtime = "torch"
        settings.detector.threads = 1
    if mode in ("naive", "fullscan"):
        settings.detector.full_scan_interval_s = 0.0
    # naive: the libraries' own thread defaults, as the worker ran before it split the CPU
    inner = build_processor(settings, split_threads=not naive)
    inner.max_frame_age_ms = None if naive else max_age_ms
    return inner


def runtimes(processor: FrameProcessor) -> dict:
    """What ran the classifier and the detector (``onnxruntime``, ``torch``; OpenCV's own)."""
    detector = getattr(processor.detector, "inner", processor.detector)
    return {"model": processor.engine.runtime, "detector": getattr(detector, "runtime", "opencv")}
