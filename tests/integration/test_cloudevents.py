"""CloudEvents binary mode (issue 36, 2): what the worker publishes (events, changes, dead
letters) and the aggregator's alerts, read back from a real broker by the ``cloudevents`` SDK;
webhooks parsed by its HTTP binding on a loopback receiver."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiokafka import AIOKafkaProducer
from cloudevents.core.bindings import http as ce_http
from cloudevents.core.bindings import kafka as ce_kafka

from emostream.aggregator.rules.alerts import AlertEngine
from emostream.frames import FrameMeta, encode_frame, frame_headers
from emostream.kafka.clients import ensure_topics
from emostream.kafka.dead_letters import H_REASON
from emostream.webhooks import new_secret
from tests.integration.worker_run import collect, running_worker
from tests.unit.test_standard_webhooks import deliver, opts
from tests.unit.test_webhooks import make_alert


def as_cloudevent(record):
    """The SDK's reading of one aiokafka record (binary mode: attributes in ``ce_*`` headers)."""
    message = ce_kafka.KafkaMessage(
        headers={k: v for k, v in record.headers}, key=record.key, value=record.value or b""
    )
    return ce_kafka.from_binary_event(message)


async def test_worker_events_changes_and_dead_letters_are_cloudevents(
    kafka_settings, astronaut_bgr, group_id
):
    await ensure_topics(kafka_settings)
    image = encode_frame(astronaut_bgr)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
    await producer.start()
    topic, key = kafka_settings.frames_topic, b"door-cam"
    try:
        await producer.send_and_wait(
            topic, b"\xff\xd8corrupt", key=key, headers=frame_headers(FrameMeta("door-cam", 0, 1))
        )
        for seq in range(1, 9):
            meta = FrameMeta("door-cam", seq, 1_700_000_000_000 + seq * 100)
            await producer.send_and_wait(topic, image, key=key, headers=frame_headers(meta))
    finally:
        await producer.stop()
    async with running_worker(
        kafka_settings, group_id("worker"), dead_letter_images=True
    ) as worker:
        events = await collect(kafka_settings.bootstrap_servers, kafka_settings.events_topic, 8)
        changes = await collect(kafka_settings.bootstrap_servers, kafka_settings.changes_topic, 1)
        (dead,) = await collect(kafka_settings.bootstrap_servers, kafka_settings.dlq_topic, 1)
    assert worker.events >= 8
    for record in events:
        ce = as_cloudevent(record)
        body = json.loads(record.value)
        assert ce.get_specversion() == "1.0"
        assert ce.get_id() == body["event_id"]
        assert ce.get_type() == "io.emostream.emotion.v1"
        assert ce.get_source() == "/emostream/streams/door-cam"
        assert ce.get_datacontenttype() == "application/json"
        assert ce.get_time().timestamp() * 1000 == 1_700_000_000_000 + body["frame_seq"] * 100
        assert ce.get_data() == body
        assert dict(record.headers)["emostream-schema"] == b"emotion-event/1"  # kept
    change = as_cloudevent(changes[0])
    assert change.get_type() == "io.emostream.change.v1"
    assert change.get_id() == json.loads(changes[0].value)["event_id"] + ".change"
    letter = as_cloudevent(dead)
    assert dict(dead.headers)[H_REASON] == b"corrupt_image"
    assert letter.get_type() == "io.emostream.deadletter.v1"
    assert letter.get_source() == f"/emostream/topics/{kafka_settings.frames_topic}"
    assert letter.get_data() == b"\xff\xd8corrupt"  # the original bytes, as their type says
    assert letter.get_datacontenttype() == "image/jpeg"


async def test_published_alerts_are_cloudevents(kafka_settings):
    await ensure_topics(kafka_settings)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers)
    await producer.start()
    try:
        engine = AlertEngine(None, producer, kafka_settings.alerts_topic, None)  # type: ignore[arg-type]
        await (await engine._send(make_alert()))
    finally:
        await producer.stop()
    (record,) = await collect(kafka_settings.bootstrap_servers, kafka_settings.alerts_topic, 1)
    ce = as_cloudevent(record)
    assert (ce.get_id(), ce.get_type()) == ("a" * 32, "io.emostream.alert.v1")
    assert ce.get_source() == "/emostream/streams/cam-1"
    assert ce.get_subject() == "t1"
    assert ce.get_data()["alert_id"] == "a" * 32


class Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list = []


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        message = ce_http.HTTPMessage(headers=dict(self.headers.items()), body=body)
        self.server.received.append(ce_http.from_binary_event(message))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - quiet
        pass


async def test_webhooks_are_cloudevents_in_http_binary_mode():
    receiver = Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        entry = await deliver(
            opts(new_secret()), f"http://127.0.0.1:{receiver.server_address[1]}/h"
        )
    finally:
        receiver.shutdown()
        receiver.server_close()
    assert entry["delivered"], entry
    (ce,) = receiver.received
    assert ce.get_specversion() == "1.0"
    assert (ce.get_id(), ce.get_type()) == ("a" * 32, "io.emostream.alert.v1")
    assert ce.get_source() == "/emostream/streams/cam-1"
    assert ce.get_time().isoformat() == make_alert().fired_at.isoformat()
    assert ce.get_data()["rule_name"] == "upset"
