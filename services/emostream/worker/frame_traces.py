"""The worker's part of a frame's trace: one ``worker process`` span per traced frame (child of
the frame's ``ingest publish``), with ``worker decode``, ``worker detect``, ``worker classify``
and ``worker publish`` children, and the ``traceparent`` of the frame's events.

Frames are processed in batches, so the stage spans are drawn after the fact from the batch's
clock (decode and detect: the batch's summed seconds per frame; classify and publish: the
batch's intervals), and carry ``emostream.batch_frames``. Without an SDK provider nothing is
recorded: events carry their frame's own ``traceparent`` (the context passes along).
"""

from __future__ import annotations

import time

from opentelemetry import trace

from emostream import tracing
from emostream.frames import H_SEQ, H_STREAM
from emostream.worker.batch import RawFrame

Key = tuple[str, int]


def _key(headers: list[tuple[str, bytes]]) -> Key | None:
    found = {k: v for k, v in headers if k in (H_STREAM, H_SEQ)}
    try:
        return found[H_STREAM].decode(), int(found[H_SEQ])
    except (KeyError, ValueError, UnicodeDecodeError):
        return None


class BatchTraces:
    """The traced frames of one batch, by (stream id, seq), and their events' contexts."""

    def __init__(self, raw: list[RawFrame]) -> None:
        self.started_ns = time.time_ns()
        self.parents: dict[Key, bytes] = {}  # the frames' traceparent headers
        for frame in raw:
            value = tracing.header(frame.headers)
            key = _key(frame.headers) if value else None
            if value and key is not None:
                self.parents.setdefault(key, value)
        self.contexts: dict[Key, tracing.Context] = {}  # the worker spans', once recorded
        self._spans: list[trace.Span] = []
        self._published_from = 0

    def processed(self, stage_s: dict[str, float], finish_started_ns: int) -> None:
        """Open the frames' spans once the batch is classified (before it is published)."""
        if not self.parents or not tracing.recording():
            return
        now, n = time.time_ns(), max(len(self.parents), 1)
        decode_ns = int(stage_s.get("decode", 0.0) * 1e9 / n)
        detect_ns = int(stage_s.get("detect", 0.0) * 1e9 / n)
        attrs = {"emostream.batch_frames": len(self.parents)}
        for key, value in self.parents.items():
            parent = tracing.extract(value)
            if parent is None:
                continue
            span = tracing.TRACER.start_span(
                "worker process",
                context=parent,
                kind=trace.SpanKind.CONSUMER,
                start_time=self.started_ns,
                attributes={"emostream.stream_id": key[0], "emostream.seq": key[1], **attrs},
            )
            ctx = trace.set_span_in_context(span)
            t = self.started_ns
            for name, start, end in (
                ("worker decode", t, t + decode_ns),
                ("worker detect", t + decode_ns, t + decode_ns + detect_ns),
                ("worker classify", finish_started_ns, now),
            ):
                child = tracing.TRACER.start_span(
                    name, context=ctx, start_time=start, attributes=attrs
                )
                child.end(end_time=max(end, start))
            self.contexts[key] = ctx
            self._spans.append(span)
        self._published_from = now

    def header(self, stream_id: str, seq: int) -> list[tuple[str, bytes]]:
        """The ``traceparent`` header of an event of frame (stream id, seq), or none: the
        worker span's, else (not recording) the frame's own."""
        ctx = self.contexts.get((stream_id, seq))
        if ctx is not None:
            return tracing.kafka_header(ctx)
        value = self.parents.get((stream_id, seq))
        return [(tracing.TRACEPARENT, value)] if value else []

    def published(self) -> None:
        """End the frames' spans once their events are acknowledged."""
        now = time.time_ns()
        for span in self._spans:
            ctx = trace.set_span_in_context(span)
            child = tracing.TRACER.start_span(
                "worker publish", context=ctx, start_time=self._published_from
            )
            child.end(end_time=now)
            span.end(end_time=now)
        self._spans = []
