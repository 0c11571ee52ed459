"""Webhook signatures, the delivery dispatcher (retries, drops) and the example bot."""

import asyncio
import json
import threading
import time

import httpx
import pytest
from pydantic import SecretStr

from emostream.schemas import AlertV1
from emostream.services.aggregator.webhooks import WebhookDispatcher
from emostream.services.config import AlertOptions
from emostream.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify
from tests.synthetic import T0, webhook_bot

SECRET = "s3cret"
BODY = b'{"alert_id":"abc","stream_id":"cam-1"}'
NOW = 1_800_000_000


def test_sign_is_hmac_of_timestamp_dot_body():
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, NOW, BODY) == f"sha256={expected}"
    assert sign(SECRET, str(NOW), BODY) == sign(SECRET.encode(), NOW, BODY)


def test_verify_accepts_a_fresh_valid_signature():
    assert verify(SECRET, str(NOW), BODY, sign(SECRET, NOW, BODY), now_s=NOW + 10)


@pytest.mark.parametrize(
    ("ts", "body", "header"),
    [
        (str(NOW), BODY + b" ", sign(SECRET, NOW, BODY)),  # body tampered
        (str(NOW + 1), BODY, sign(SECRET, NOW, BODY)),  # timestamp tampered
        (str(NOW), BODY, sign("other", NOW, BODY)),  # wrong secret
        (str(NOW), BODY, sign(SECRET, NOW, BODY)[:-1] + "0"),  # signature tampered
        (str(NOW), BODY, None),
        (None, BODY, sign(SECRET, NOW, BODY)),
        ("soon", BODY, sign(SECRET, "soon", BODY)),
        (str(NOW), BODY, "md5=abc"),
    ],
)
def test_verify_rejects_tampering_and_malformed_headers(ts, body, header):
    assert not verify(SECRET, ts, body, header, now_s=NOW)


def test_verify_rejects_old_and_future_timestamps():
    header = sign(SECRET, NOW, BODY)
    assert verify(SECRET, str(NOW), BODY, header, tolerance_s=300, now_s=NOW + 300)
    assert not verify(SECRET, str(NOW), BODY, header, tolerance_s=300, now_s=NOW + 301)
    assert not verify(SECRET, str(NOW), BODY, header, tolerance_s=300, now_s=NOW - 301)


def make_alert(alert_id: str = "a" * 32) -> AlertV1:
    return AlertV1(
        alert_id=alert_id, rule_id="r" * 32, rule_name="upset", kind="probability_above",
        stream_id="cam-1", track_id="t1", episode_started_at=T0, fired_at=T0, event_id="e" * 32,
        frame_seq=3,
        summary={"source": "raw", "label": "angry", "confidence": 0.8,
                 "probabilities": {"angry": 0.8, "disgust": 0.0, "fear": 0.0, "happy": 0.0,
                                   "sad": 0.2, "surprise": 0.0, "neutral": 0.0},
                 "emotions": ["angry"], "score": 0.8, "threshold": 0.6, "above_for_s": 2.0},
    )


def options(**over) -> AlertOptions:
    base = {"webhook_secret": SecretStr(SECRET), "webhook_backoff_s": 0.01,
            "webhook_max_backoff_s": 0.02, "webhook_max_attempts": 3, "shutdown_grace_s": 2.0}
    return AlertOptions(**(base | over))


class Log:
    def __init__(self) -> None:
        self.entries: list[tuple[str, dict]] = []
        self.done = asyncio.Event()

    async def __call__(self, rule_id: str, entry: dict) -> None:
        self.entries.append((rule_id, entry))
        self.done.set()


async def test_retries_server_errors_then_delivers_signed():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(503 if len(seen) == 1 else 204)

    log = Log()
    async with WebhookDispatcher(options(), log, transport=httpx.MockTransport(handler)) as d:
        assert d.submit("r" * 32, "http://bot/hook", make_alert())
        await asyncio.wait_for(log.done.wait(), 5)
    rule_id, entry = log.entries[0]
    assert rule_id == "r" * 32
    assert entry["delivered"] and entry["attempts"] == 2 and entry["status_code"] == 204
    assert entry["alert_id"] == "a" * 32 and entry["delivered_at"] and entry["error"] is None
    last = seen[-1]
    assert verify(SECRET, last.headers[TIMESTAMP_HEADER], last.content, last.headers[SIGNATURE_HEADER])
    assert json.loads(last.content)["alert_id"] == "a" * 32
    assert last.headers["X-Emostream-Attempt"] == "2"


async def test_client_errors_are_not_retried():
    calls = []
    log = Log()
    transport = httpx.MockTransport(lambda r: calls.append(r) or httpx.Response(401))
    async with WebhookDispatcher(options(), log, transport=transport) as d:
        d.submit("r" * 32, "http://bot/hook", make_alert())
        await asyncio.wait_for(log.done.wait(), 5)
    entry = log.entries[0][1]
    assert len(calls) == 1 and not entry["delivered"] and entry["status_code"] == 401
    assert entry["error"] == "HTTP 401" and d.failed == 1


async def test_connection_errors_retry_up_to_max_attempts():
    def handler(request):
        raise httpx.ConnectError("refused", request=request)

    log = Log()
    async with WebhookDispatcher(options(), log, transport=httpx.MockTransport(handler)) as d:
        d.submit("r" * 32, "http://bot/hook", make_alert())
        await asyncio.wait_for(log.done.wait(), 5)
    entry = log.entries[0][1]
    assert entry["attempts"] == 3 and not entry["delivered"] and "ConnectError" in entry["error"]


async def test_full_queue_drops_without_blocking():
    release = asyncio.Event()

    async def handler(request):
        await release.wait()
        return httpx.Response(200)

    log = Log()
    d = WebhookDispatcher(options(webhook_queue_size=2, webhook_concurrency=1), log,
                          transport=httpx.MockTransport(handler))
    await d.start()
    try:
        t0 = time.monotonic()
        results = []
        for i in range(6):
            results.append(d.submit("r" * 32, "http://bot/hook", make_alert(f"{i:032d}")))
            await asyncio.sleep(0)  # let the one sender pick up the first
        assert time.monotonic() - t0 < 0.5
        assert results.count(False) == d.dropped >= 3
        release.set()
    finally:
        await d.stop()
    assert d.delivered == results.count(True)


async def test_without_a_secret_nothing_is_sent():
    calls = []
    log = Log()
    transport = httpx.MockTransport(lambda r: calls.append(r) or httpx.Response(200))
    async with WebhookDispatcher(AlertOptions(), log, transport=transport) as d:
        d.submit("r" * 32, "http://bot/hook", make_alert())
        await asyncio.wait_for(log.done.wait(), 5)
    assert calls == [] and "WEBHOOK_SECRET" in log.entries[0][1]["error"]


@pytest.fixture
def bot():
    server = webhook_bot().make_server(SECRET, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def post(server, body: bytes, ts: str, signature: str) -> httpx.Response:
    url = f"http://127.0.0.1:{server.server_address[1]}/alerts"
    return httpx.post(url, content=body, headers={TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: signature},
                      timeout=5)


def test_bot_replies_to_signed_alerts_and_rejects_bad_ones(bot, capsys):
    body = make_alert().model_dump_json().encode()
    ts = str(int(time.time()))
    ok = post(bot, body, ts, sign(SECRET, ts, body))
    assert ok.status_code == 200
    assert ok.json()["reply"] == "Customer on stream cam-1 seems upset; escalating to a human"
    assert "escalating to a human" in capsys.readouterr().out
    assert post(bot, body, ts, sign(SECRET, ts, body)).json()["reply"] == "already handled"
    assert post(bot, body + b" ", ts, sign(SECRET, ts, body)).status_code == 401
    assert post(bot, body, ts, sign("wrong", ts, body)).status_code == 401
    old = str(int(time.time()) - 3600)
    assert post(bot, body, old, sign(SECRET, old, body)).status_code == 401
    assert len(bot.received) == 1 and bot.rejected == 3


def test_bot_reply_for_a_happy_change():
    alert = {"stream_id": "lobby", "summary": {"label": "happy", "to_label": "happy"}}
    assert webhook_bot().reply_for(alert) == "Customer on stream lobby seems happy; no action needed"


def test_secret_and_topic_from_environment(monkeypatch):
    from emostream.services.config import AggregatorSettings, masked_dump

    monkeypatch.setenv("EMOSTREAM_ALERTS__WEBHOOK_SECRET", "from-env")
    monkeypatch.setenv("EMOSTREAM_KAFKA__ALERTS_TOPIC", "bots.alerts")
    monkeypatch.setenv("EMOSTREAM_REDIS__SESSION_GAP_SECONDS", "12.5")
    s = AggregatorSettings()
    assert s.alerts.webhook_secret.get_secret_value() == "from-env"
    assert s.kafka.alerts_topic == "bots.alerts" and s.redis.session_gap_seconds == 12.5
    assert "from-env" not in json.dumps(masked_dump(s))
