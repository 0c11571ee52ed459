"""OpenTelemetry trace context across the three services (issue 36, 4), in one process with an
in-memory exporter: an HTTP client's ``traceparent`` -> ingest's HTTP API -> frames topic (real
broker) -> worker -> events topic -> aggregator (real Redis) -> rule -> webhook on a loopback
receiver, all one connected trace."""

from __future__ import annotations

import asyncio
import threading
import time
from contextlib import AsyncExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once
from pydantic import SecretStr

from emostream import tracing
from emostream.aggregator import EventConsumer, create_app
from emostream.aggregator.state.store import EventStore
from emostream.config import AggregatorOptions, AlertOptions, WorkerOptions
from emostream.inference import EmotionEngine
from emostream.kafka.clients import ensure_topics
from emostream.models import untrained_model
from emostream.vision.detector import HaarDetector
from emostream.webhooks import new_secret
from emostream.worker import FrameProcessor, Worker
from tests.integration.test_ingest_http import KEY, frames, serve
from tests.waiting import wait_until

CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
EMOTIONS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


@pytest.fixture
def spans():
    """An SDK provider with an in-memory exporter for the test; the no-op API again after."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    yield exporter
    provider.shutdown()
    trace._TRACER_PROVIDER = None  # back to the proxy (the API sets a provider once only)
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    tracing.TRACER = trace.get_tracer("emostream")


def receiver() -> tuple[ThreadingHTTPServer, list[dict[str, str]]]:
    got: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            self.rfile.read(int(self.headers.get("content-length", 0)))
            got.append({k.lower(): v for k, v in self.headers.items()})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, got


def chain(span, by_id) -> list[str]:
    """Names from ``span`` up through its parents recorded here; then the remote parent id."""
    names = []
    while span is not None:
        names.append(span.name)
        parent = span.parent
        if parent is None:
            break
        if parent.span_id not in by_id:
            names.append(format(parent.span_id, "016x"))
            break
        span = by_id[parent.span_id]
    return names


async def test_one_frame_is_one_trace_from_client_to_webhook(
    spans, kafka_settings, redis_settings, group_id
):
    await ensure_topics(kafka_settings)
    server, hooks = receiver()
    alerts = AlertOptions(
        webhook_secret=SecretStr(new_secret()),
        webhook_allow_networks=["127.0.0.0/8"],
    )
    stream = f"traced-{time.time_ns() % 10**6}"
    processor = FrameProcessor(HaarDetector(), EmotionEngine(untrained_model(), device="cpu"))
    async with AsyncExitStack() as stack:
        store = await stack.enter_async_context(EventStore(redis_settings))
        consumer = await stack.enter_async_context(
            EventConsumer(
                kafka_settings, AggregatorOptions(group_id=group_id("agg")), store, alerts
            )
        )
        worker = await stack.enter_async_context(
            Worker(
                kafka_settings,
                WorkerOptions(group_id=group_id("worker"), max_batch_frames=2, track_min_hits=1),
                processor,
            )
        )
        api = create_app(store, consumer=consumer, admin_keys=[SecretStr("ak")], alerts=alerts)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=api), base_url="http://api"
        ) as admin:
            rule = {
                "kind": "probability_above",
                "name": "anything",
                "stream_id": stream,
                "emotions": EMOTIONS,
                "threshold": 0.0,
                "for_seconds": 0.1,
                "webhook_url": f"http://127.0.0.1:{server.server_address[1]}/hook",
            }
            created = await admin.post("/v1/rules", json=rule, headers={"X-API-Key": "ak"})
            assert created.status_code == 201, created.text
        spans.clear()  # that request's own trace
        address, _ = await serve(stack, kafka_settings)
        runs = [asyncio.create_task(c.run()) for c in (consumer, worker)]
        traceparent = f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"
        base_ms = int(time.time() * 1000) - 5000
        async with httpx.AsyncClient(base_url=f"http://{address}") as client:
            for seq, jpeg in enumerate(frames()):
                resp = await client.post(
                    f"/v1/streams/{stream}/frames",
                    content=jpeg,
                    headers={
                        "X-API-Key": KEY,
                        "traceparent": traceparent,
                        "X-Emostream-Seq": str(seq),
                        "X-Emostream-Captured-Ms": str(base_ms + seq * 300),
                    },
                )
                assert resp.status_code == 202, resp.text

        async def webhook_arrived() -> bool:
            return bool(hooks)

        await wait_until(webhook_arrived, timeout_s=90, interval_s=0.3)
        for c in (consumer, worker):
            c.request_stop()
        await asyncio.gather(*runs)
    server.shutdown()

    finished = spans.get_finished_spans()
    by_id = {s.context.span_id: s for s in finished}
    trace_ids = {format(s.context.trace_id, "032x") for s in finished}
    assert trace_ids == {CLIENT_TRACE}
    header = hooks[0]["traceparent"]
    (delivery,) = [s for s in finished if header.split("-")[2] == format(s.context.span_id, "016x")]
    names = chain(delivery, by_id)
    assert names[:4] == ["webhook delivery", "aggregator store", "worker process", "ingest publish"]
    assert names[-1] == CLIENT_SPAN  # through FastAPI's own server spans to the client's
    assert header == f"00-{CLIENT_TRACE}-{format(delivery.context.span_id, '016x')}-01"
    names = {s.name for s in finished}
    stages = {"worker decode", "worker detect", "worker classify", "worker publish"}
    assert stages <= names
    process = [s for s in finished if s.name == "worker process"]
    for stage in (s for s in finished if s.name in stages):
        assert stage.parent.span_id in {p.context.span_id for p in process}
    store_span = by_id[delivery.parent.span_id]
    assert store_span.links, "the stored batch links its events' spans"
