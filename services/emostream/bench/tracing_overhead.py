"""Per-frame cost of the trace context (issue 36, 4): ingest's ``start_publish`` (header made,
span started and ended), the worker's ``BatchTraces`` (frame header read, event header made) and
the aggregator's extract, with tracing off (the API's no-op provider: the context is passed
along) and on (the SDK recording into a dropping exporter). ``python -m
emostream.bench.tracing_overhead [frames]`` prints microseconds per frame."""

from __future__ import annotations

import sys
import time

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from emostream import tracing
from emostream.frames import FrameMeta, frame_headers
from emostream.worker.batch import RawFrame
from emostream.worker.frame_traces import BatchTraces


class _Drop(SpanExporter):
    def export(self, spans):  # type: ignore[no-untyped-def]
        return SpanExportResult.SUCCESS


class _Acked:
    def cancelled(self) -> bool:
        return False

    def exception(self) -> None:
        return None


def per_frame_us(frames: int, batch: int = 8) -> float:
    """Microseconds per frame of the whole header path, batches of ``batch`` frames."""
    t0 = time.perf_counter()
    for start in range(0, frames, batch):
        raw = []
        for seq in range(start, start + batch):
            headers = frame_headers(FrameMeta("cam", seq, 1))
            tracing.start_publish(headers, "cam")(_Acked())
            raw.append(RawFrame("frames", 0, seq, b"", headers))
        traces = BatchTraces(raw)
        traces.processed({"decode": 0.001, "detect": 0.001}, time.time_ns())
        out = [traces.header("cam", seq) for seq in range(start, start + batch)]
        traces.published()
        with tracing.store_span([tracing.header(h) for h in out]):
            pass
    return (time.perf_counter() - t0) * 1e6 / frames


def baseline_us(frames: int) -> float:
    """The same frames' headers without any trace context: what the others add to."""
    t0 = time.perf_counter()
    for seq in range(frames):
        RawFrame("frames", 0, seq, b"", frame_headers(FrameMeta("cam", seq, 1)))
    return (time.perf_counter() - t0) * 1e6 / frames


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    frames = int(args[0]) if args else 20_000
    per_frame_us(500)
    base = baseline_us(frames)
    off = per_frame_us(frames)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_Drop()))
    trace.set_tracer_provider(provider)
    per_frame_us(500)
    on = per_frame_us(frames)
    print(
        f"per frame, {frames} frames: frame headers alone {base:.1f} us; with the trace "
        f"context off {off:.1f} us (+{off - base:.1f}); on {on:.1f} us (+{on - base:.1f})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
