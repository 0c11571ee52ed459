"""W3C trace context through the pipeline (OpenTelemetry): ingest, frames, worker, events,
aggregator, webhooks.

Messages carry a ``traceparent`` header (Kafka and HTTP). Spans are recorded only when an SDK
tracer provider is installed: ``configure_tracing`` installs one when ``OTEL_TRACES_EXPORTER``
names an exporter (``console``, ``otlp`` with ``opentelemetry-exporter-otlp`` installed); the
default, ``none``, leaves the API's no-op provider, and the context is only passed along (ingest
starts an unsampled one per frame, each hop forwards it), a few microseconds per frame. The
SDK's own ``OTEL_*`` variables apply (``OTEL_SERVICE_NAME``, ``OTEL_TRACES_SAMPLER``,
``OTEL_BSP_*``, the exporter's endpoint).
"""

from __future__ import annotations

import importlib
import os
import random
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import structlog
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Link

from emostream.errors import ConfigError

log = structlog.get_logger(__name__)

TRACEPARENT = "traceparent"
TRACER = trace.get_tracer("emostream")
Context = otel_context.Context
_configured = False


def configure_tracing(service: str) -> bool:
    """Install the SDK when ``OTEL_TRACES_EXPORTER`` asks for one; True when spans record."""
    global _configured
    names = [n.strip() for n in os.environ.get("OTEL_TRACES_EXPORTER", "none").split(",")]
    names = [n for n in names if n and n != "none"]
    if _configured or not names:
        return recording()
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    attrs = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": f"emostream-{service}"}
    provider = TracerProvider(resource=Resource.create(attrs))
    for name in names:
        provider.add_span_processor(BatchSpanProcessor(_exporter(name)))
    trace.set_tracer_provider(provider)
    _configured = True
    log.info("tracing on", exporters=names, service=service)
    return True


def _exporter(name: str) -> Any:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if name == "otlp":
        try:
            otlp = importlib.import_module("opentelemetry.exporter.otlp.proto.http.trace_exporter")
        except ImportError as exc:
            raise ConfigError(
                "OTEL_TRACES_EXPORTER=otlp needs: pip install opentelemetry-exporter-otlp"
            ) from exc
        return otlp.OTLPSpanExporter()
    raise ConfigError(f"OTEL_TRACES_EXPORTER: unknown exporter {name!r} (none, console, otlp)")


def recording() -> bool:
    """Whether spans are recorded (an SDK provider is installed), not only passed along."""
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def header(headers: Iterable[tuple[str, bytes]] | None) -> bytes | None:
    """The ``traceparent`` header's value among Kafka headers, if any."""
    for key, value in headers or ():
        if key == TRACEPARENT:
            return value
    return None


def extract(value: bytes | str | None) -> Context | None:
    """The remote parent a ``traceparent`` value names; None when absent or invalid."""
    if not value:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    ctx = propagate.extract({TRACEPARENT: text})
    return ctx if trace.get_current_span(ctx).get_span_context().is_valid else None


def traceparent(ctx: Context | None = None) -> str | None:
    """The ``traceparent`` value of ``ctx`` (default: the current context)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=ctx)
    return carrier.get(TRACEPARENT)


def kafka_header(ctx: Context | None = None) -> list[tuple[str, bytes]]:
    """``[("traceparent", ...)]`` for ``ctx``, or ``[]`` when it has no valid span."""
    value = traceparent(ctx)
    return [(TRACEPARENT, value.encode())] if value else []


def _unsampled_root() -> bytes:
    """A fresh, unsampled ``traceparent`` (no SDK: made directly, a microsecond)."""
    trace_id, span_id = random.getrandbits(128) or 1, random.getrandbits(64) or 1
    return f"00-{trace_id:032x}-{span_id:016x}-00".encode()


def start_publish(
    headers: list[tuple[str, bytes]], stream_id: str, parent: Context | None = None
) -> Callable[[Any], None]:
    """Start the ``ingest publish`` span of one frame (child of ``parent``, an HTTP client's
    context, else a root) and append its ``traceparent`` to ``headers``. Returns the done
    callback for the send's future: it ends the span at the acknowledgement."""
    if not recording():
        headers.extend(kafka_header(parent) if parent else [(TRACEPARENT, _unsampled_root())])
        return _nothing
    span = TRACER.start_span(
        "ingest publish",
        context=parent,
        kind=trace.SpanKind.PRODUCER,
        attributes={"emostream.stream_id": stream_id},
    )
    headers.extend(kafka_header(trace.set_span_in_context(span)))

    def done(fut: Any) -> None:
        if fut.cancelled() or fut.exception() is not None:
            span.set_status(trace.StatusCode.ERROR, "send failed")
        span.end()

    return done


def _nothing(_fut: Any) -> None:
    return None


def links(contexts: Iterable[Context | None]) -> list[Link]:
    """Links to the spans of ``contexts`` (the events of one stored batch)."""
    out = []
    for ctx in contexts:
        if ctx is not None:
            out.append(Link(trace.get_current_span(ctx).get_span_context()))
    return out


@contextmanager
def child_span(
    name: str,
    parent: Context | None,
    kind: trace.SpanKind = trace.SpanKind.INTERNAL,
    links_to: Iterable[Context | None] = (),
    **attributes: Any,
) -> Iterator[None]:
    """A span current for the block, child of ``parent``. Not recording: ``parent`` itself is
    current (passed along to what the block sends); no parent: nothing happens."""
    if parent is None:
        yield
        return
    if not recording():
        token = otel_context.attach(parent)
        try:
            yield
        finally:
            otel_context.detach(token)
        return
    with TRACER.start_as_current_span(
        name, context=parent, kind=kind, links=links(links_to), attributes=attributes
    ):
        yield


def store_span(values: Iterable[bytes | None]) -> Any:
    """The aggregator's ``aggregator store`` span of one batch (``values``: its events'
    ``traceparent`` headers): child of its first traced event, linked to every traced one;
    current inside the block (alerts' webhooks join the trace). Not recording: only the first
    is read, and passed along."""
    found = [v for v in values if v]
    if not recording():
        return child_span("aggregator store", extract(found[0]) if found else None)
    valid = [c for c in map(extract, found) if c is not None]
    first = valid[0] if valid else None
    return child_span(
        "aggregator store",
        first,
        trace.SpanKind.CONSUMER,
        valid,
        **{"emostream.events": len(valid)},
    )


def current() -> Context | None:
    """The current context when it holds a valid span (to hand to later work), else None."""
    ctx = otel_context.get_current()
    return ctx if trace.get_current_span(ctx).get_span_context().is_valid else None
