"""Prometheus metrics shared by the services (one process-wide registry)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from prometheus_client import Counter, Gauge, Histogram

FRAMES = Counter("emostream_frames_total", "Frames consumed by workers, by outcome", ["outcome"])
FACES = Counter("emostream_faces_total", "Faces classified")
EVENTS_PUBLISHED = Counter("emostream_events_published_total", "Emotion events published")
BATCH_FRAMES = Histogram(
    "emostream_batch_frames", "Frames per worker micro-batch", buckets=(1, 2, 4, 8, 16, 32, 64, 128)
)
STAGE_SECONDS = Histogram(
    "emostream_stage_seconds",
    "Worker stage durations per batch",
    ["stage"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
FRAME_STAGE_SECONDS = Histogram(
    "emostream_worker_frame_stage_seconds",
    "Worker seconds per frame in each stage, one observation per batch: work (decode, detect, "
    "classify, events, publish, commit) and waits (queue_wait: capture to fetch, pipeline_wait: "
    "detected, waiting for the batch before to be committed)",
    ["stage"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
BATCH_LIMIT_FRAMES = Gauge(
    "emostream_worker_batch_limit_frames",
    "Frames the next worker micro-batch may take, as the latency target steers it",
)
E2E_LATENCY = Histogram(
    "emostream_e2e_latency_seconds",
    "Capture to event publish",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30),
)
CONSUMER_LAG = Gauge(
    "emostream_consumer_lag", "Highwater minus position", ["group", "topic", "partition"]
)
EVENTS_STORED = Counter("emostream_events_stored_total", "Events written to Redis (new ones)")
EVENTS_DUPLICATE = Counter("emostream_events_duplicate_total", "Redelivered events dropped by id")
STORE_SECONDS = Histogram(
    "emostream_aggregator_store_seconds",
    "Aggregator: one batch's Redis write (retries while Redis is down included)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.35, 0.5, 0.75, 1, 2.5, 5),
)
# stream_id: "all" unless per-stream labels are enabled (StreamLabels, STREAM_LABELS below).
FRAMES_SENT = Counter("emostream_frames_sent_total", "Frames published by ingest", ["stream_id"])
FRAMES_SKIPPED = Counter(
    "emostream_frames_dropped_total", "Frames dropped by policy", ["stream_id", "reason"]
)
ALERTS = Counter("emostream_alerts_total", "Alerts fired by rules", ["kind"])
ALERT_ERRORS = Counter(
    "emostream_alert_errors_total", "Rule evaluation or alert publish failures", ["stage"]
)
WEBHOOKS = Counter(
    "emostream_webhook_deliveries_total",
    "Webhook deliveries by outcome (delivered, failed, dropped, cancelled)",
    ["outcome"],
)
WEBHOOK_QUEUE = Gauge("emostream_webhook_queue", "Webhook deliveries waiting to be sent")
BROKER_DATA_LOSS = Counter(
    "emostream_broker_data_loss_total",
    "Partitions whose highwater or fetched offset fell below a committed "
    "offset (the broker lost data)",
    ["group", "topic"],
)
TOPICS_RECREATED = Counter(
    "emostream_topics_recreated_total",
    "Times a consumer found its topic missing and recreated the topics",
    ["topic"],
)
WEBHOOK_SENDERS = Gauge(
    "emostream_webhook_senders_alive",
    "Webhook sender tasks running (fewer than configured: deliveries stall)",
)
WEBHOOK_SENDERS_DIED = Counter(
    "emostream_webhook_senders_died_total", "Webhook sender tasks that ended with an exception"
)
INGEST_HTTP_FRAMES = Counter(
    "emostream_ingest_http_frames_total",
    "Frames received over HTTP or WebSocket by ingest, by outcome (accepted, refused, busy: "
    "429, dropped: oldest WebSocket frames, failed: Kafka send failed)",
    ["outcome"],
)
INGEST_HTTP_IN_FLIGHT = Gauge(
    "emostream_ingest_http_in_flight", "HTTP-ingested frames sent to Kafka, not yet acknowledged"
)


class StreamLabels:
    """The ``stream_id`` label of the per-stream ingest counters, bounded (issue 33, 10).

    Off by default (``max_streams`` 0): every stream counts under ``"all"``, so ``/metrics``
    names no stream. Enabled, the first ``max_streams`` streams seen get label sets of their own
    and the rest count under ``"other"``; a stream without frames for ``idle_s`` has its label
    sets removed, which frees its place. Before, every stream id stayed in ``/metrics`` for good
    (1.47 MB a scrape after 10,000 streams).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_streams, self.idle_s = 0, 600.0
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()  # oldest activity first
        self._sets: dict[str, set[tuple[Counter, tuple[str, ...]]]] = {}
        self._pruned_at = 0.0

    def configure(self, max_streams: int, idle_s: float) -> None:
        self.max_streams, self.idle_s = max_streams, idle_s
        self._prune(self._clock(), keep=max_streams)

    def inc(self, counter: Counter, stream_id: str, *labels: str) -> None:
        """``counter.labels(<stream label>, *labels).inc()``."""
        now = self._clock()
        if now - self._pruned_at >= 1.0:
            self._prune(now, self.max_streams)
        value = self._label(stream_id, now)
        counter.labels(value, *labels).inc()
        if value == stream_id:
            self._sets.setdefault(stream_id, set()).add((counter, (value, *labels)))

    def _label(self, stream_id: str, now: float) -> str:
        if self.max_streams == 0:
            return "all"
        if stream_id in self._seen or len(self._seen) < self.max_streams:
            self._seen[stream_id] = now
            self._seen.move_to_end(stream_id)
            return stream_id
        return "other"

    def _prune(self, now: float, keep: int) -> None:
        self._pruned_at = now
        while self._seen:
            stream_id, at = next(iter(self._seen.items()))
            if now - at < self.idle_s and len(self._seen) <= keep:
                return
            del self._seen[stream_id]
            for counter, labels in self._sets.pop(stream_id, ()):
                try:
                    counter.remove(*labels)
                except KeyError:
                    pass


STREAM_LABELS = StreamLabels()


def count_frame_sent(stream_id: str) -> None:
    STREAM_LABELS.inc(FRAMES_SENT, stream_id)


def count_frame_dropped(stream_id: str, reason: str) -> None:
    STREAM_LABELS.inc(FRAMES_SKIPPED, stream_id, reason)
