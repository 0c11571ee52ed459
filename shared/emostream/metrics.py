"""Prometheus metrics shared by the services (one process-wide registry)."""

from __future__ import annotations

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
