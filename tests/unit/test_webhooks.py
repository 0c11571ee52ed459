"""Webhook signatures, the delivery dispatcher (retries, drops) and the example bot."""

import asyncio
import json
import threading
import time

import httpx
import pytest
from pydantic import SecretStr

from emostream.aggregator.webhooks.delivery import Delivery, WebhookDispatcher
from emostream.config import AlertOptions
from emostream.schemas import AlertV1
from emostream.webhooks import sign, signed_headers, verify
from tests.synthetic import T0, webhook_bot
from tests.waiting import wait_until

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the Standard Webhooks spec's example form
BODY = b'{"alert_id":"abc","stream_id":"cam-1"}'
NOW = 1_800_000_000
MSG = "msg_abc"


def test_sign_is_the_standard_webhooks_hmac_of_id_timestamp_body():
    import base64
    import hashlib
    import hmac

    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    mac = hmac.new(key, f"{MSG}.{NOW}.".encode() + BODY, hashlib.sha256).digest()
    assert sign(SECRET, MSG, NOW, BODY) == "v1," + base64.b64encode(mac).decode()


def headers(**over) -> dict[str, str]:
    return signed_headers([SECRET], MSG, BODY, now_s=NOW) | over


def test_verify_accepts_a_fresh_valid_signature_in_any_header_case():
    assert verify(SECRET, headers(), BODY, now_s=NOW + 10)
    assert verify(SECRET, {k.upper(): v for k, v in headers().items()}, BODY, now_s=NOW)


@pytest.mark.parametrize(
    ("over", "body"),
    [
        ({}, BODY + b" "),  # body tampered
        ({"webhook-timestamp": str(NOW + 1)}, BODY),  # timestamp tampered
        ({"webhook-id": "msg_other"}, BODY),  # id tampered
        ({"webhook-signature": sign("whsec_b3RoZXI=", MSG, NOW, BODY)}, BODY),  # wrong secret
        ({"webhook-signature": sign(SECRET, MSG, NOW, BODY)[:-2] + "A="}, BODY),
        ({"webhook-signature": ""}, BODY),
        ({"webhook-timestamp": "soon"}, BODY),
        ({"webhook-timestamp": "\u00b2"}, BODY),  # a digit to str.isdigit, not to int()
        ({"webhook-signature": "sha256=abc"}, BODY),
    ],
)
def test_verify_rejects_tampering_and_malformed_headers(over, body):
    assert not verify(SECRET, headers(**over), body, now_s=NOW)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_verify_is_false_without_a_header(missing):
    partial = {k: v for k, v in headers().items() if k != missing}
    assert not verify(SECRET, partial, BODY, now_s=NOW)


def test_verify_rejects_old_and_future_timestamps():
    assert verify(SECRET, headers(), BODY, tolerance_s=300, now_s=NOW + 300)
    assert not verify(SECRET, headers(), BODY, tolerance_s=300, now_s=NOW + 301)
    assert not verify(SECRET, headers(), BODY, tolerance_s=300, now_s=NOW - 301)


def make_alert(alert_id: str = "a" * 32) -> AlertV1:
    return AlertV1(
        alert_id=alert_id,
        rule_id="r" * 32,
        rule_name="upset",
        kind="probability_above",
        stream_id="cam-1",
        track_id="t1",
        episode_started_at=T0,
        fired_at=T0,
        event_id="e" * 32,
        frame_seq=3,
        summary={
            "source": "raw",
            "label": "angry",
            "confidence": 0.8,
            "probabilities": {
                "angry": 0.8,
                "disgust": 0.0,
                "fear": 0.0,
                "happy": 0.0,
                "sad": 0.2,
                "surprise": 0.0,
                "neutral": 0.0,
            },
            "emotions": ["angry"],
            "score": 0.8,
            "threshold": 0.6,
            "above_for_s": 2.0,
        },
    )


def options(**over) -> AlertOptions:
    base = {
        "webhook_secret": SecretStr(SECRET),
        "webhook_backoff_s": 0.01,
        "webhook_max_backoff_s": 0.02,
        "webhook_max_attempts": 3,
        "shutdown_grace_s": 2.0,
    }
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
    assert verify(SECRET, last.headers, last.content)
    assert last.headers["webhook-id"] == "a" * 32 == seen[0].headers["webhook-id"]
    assert json.loads(last.content)["alert_id"] == "a" * 32
    assert last.headers["X-Emostream-Attempt"] == "2"


async def send_one(opts: AlertOptions, status: int) -> tuple[list, Log, WebhookDispatcher]:
    """One alert to a bot that answers ``status``: its requests, the delivery log, the
    (stopped) dispatcher, once the delivery is recorded."""
    calls: list = []
    log = Log()
    transport = httpx.MockTransport(lambda r: calls.append(r) or httpx.Response(status))
    async with WebhookDispatcher(opts, log, transport=transport) as d:
        d.submit("r" * 32, "http://bot/hook", make_alert())
        await asyncio.wait_for(log.done.wait(), 5)
    return calls, log, d


async def test_client_errors_are_not_retried():
    calls, log, d = await send_one(options(), 401)
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
    d = WebhookDispatcher(
        options(webhook_queue_size=2, webhook_concurrency=1),
        log,
        transport=httpx.MockTransport(handler),
    )
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
    calls, log, _ = await send_one(AlertOptions(), 200)
    assert calls == [] and "WEBHOOK_SECRET" in log.entries[0][1]["error"]


@pytest.fixture
def bot():
    server = webhook_bot().make_server(SECRET, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def post(server, body: bytes, sent: dict[str, str]) -> httpx.Response:
    url = f"http://127.0.0.1:{server.server_address[1]}/alerts"
    return httpx.post(url, content=body, headers=sent, timeout=5)


def test_bot_replies_to_signed_alerts_and_rejects_bad_ones(bot, capsys):
    body = make_alert().model_dump_json().encode()
    good = signed_headers([SECRET], "a" * 32, body)
    ok = post(bot, body, good)
    assert ok.status_code == 200
    assert ok.json()["reply"] == "Customer on stream cam-1 seems upset; escalating to a human"
    assert "escalating to a human" in capsys.readouterr().out
    assert post(bot, body, good).json()["reply"] == "already handled"
    assert post(bot, body + b" ", good).status_code == 401
    assert post(bot, body, signed_headers(["whsec_d3Jvbmc="], "a" * 32, body)).status_code == 401
    old = signed_headers([SECRET], "a" * 32, body, now_s=time.time() - 3600)
    assert post(bot, body, old).status_code == 401
    assert post(bot, body, {}).status_code == 401  # no headers at all: 401, not a crash
    assert len(bot.received) == 1 and bot.rejected == 4


def test_bot_reply_for_a_happy_change():
    alert = {"stream_id": "lobby", "summary": {"label": "happy", "to_label": "happy"}}
    assert (
        webhook_bot().reply_for(alert) == "Customer on stream lobby seems happy; no action needed"
    )


def test_secret_and_topic_from_environment(monkeypatch):
    from emostream.config import AggregatorSettings, masked_dump

    monkeypatch.setenv("EMOSTREAM_ALERTS__WEBHOOK_SECRET", "whsec_ZnJvbS1lbnY=")
    monkeypatch.setenv("EMOSTREAM_KAFKA__ALERTS_TOPIC", "bots.alerts")
    monkeypatch.setenv("EMOSTREAM_AGGREGATOR__SESSION_GAP_SECONDS", "12.5")
    s = AggregatorSettings()
    assert s.alerts.webhook_secret.get_secret_value() == "whsec_ZnJvbS1lbnY="
    assert s.kafka.alerts_topic == "bots.alerts" and s.aggregator.session_gap_seconds == 12.5
    assert "ZnJvbS1lbnY" not in json.dumps(masked_dump(s))


@pytest.mark.parametrize(
    "url",
    [
        "http://xn--zz.example/hook",
        "http://[::1/hook",
        "http://bot\x00.example/",
        "http://ex\u00e4mple\u200b.com/",
    ],
)
async def test_an_unsendable_url_is_one_failed_delivery_and_the_senders_go_on(url):
    """Rules stored before URLs were validated: the sender fails the delivery and keeps going."""
    calls = []
    log = Log()
    transport = httpx.MockTransport(lambda r: calls.append(r) or httpx.Response(204))
    async with WebhookDispatcher(options(webhook_concurrency=1), log, transport=transport) as d:
        d.submit("r" * 32, url, make_alert("b" * 32))
        d.submit("r" * 32, "http://127.0.0.1:9/hook", make_alert("c" * 32))
        await wait_for_entries(log, 2)
        assert d.health() == {"senders_alive": 1, "senders": 1, "queued": 0, "ok": True}
    bad, good = (entry for _, entry in log.entries)
    assert not bad["delivered"] and "cannot be parsed" in bad["error"]
    assert good["delivered"] and len(calls) == 1


async def test_any_exception_while_sending_is_a_failed_delivery(monkeypatch):
    import idna

    def handler(request):
        raise idna.IDNAError("label too long")  # not an httpx.HTTPError

    log = Log()
    async with WebhookDispatcher(
        options(webhook_concurrency=1), log, transport=httpx.MockTransport(handler)
    ) as d:
        d.submit("r" * 32, "http://127.0.0.1:9/hook", make_alert("b" * 32))
        await wait_for_entries(log, 1)
        assert d.senders_alive == 1
    assert "IDNAError" in log.entries[0][1]["error"] and d.failed == 1


async def test_a_dead_sender_shows_in_health_and_metrics():
    from prometheus_client import REGISTRY

    from emostream.aggregator import create_app
    from emostream.config import RetentionOptions
    from emostream.settings import RedisOptions

    class Boom(Exception):
        pass

    async def broken_record(rule_id, entry):
        raise Boom("the delivery log itself")

    d = WebhookDispatcher(
        options(webhook_concurrency=2),
        broken_record,
        transport=httpx.MockTransport(lambda r: httpx.Response(204)),
    )
    await d.start()
    try:
        d._finish = None  # a bug in the sender's own code: the task dies despite the guards
        d.submit("r" * 32, "http://127.0.0.1:9/hook", make_alert("b" * 32))
        await wait_until(lambda: d.senders_alive < 2, 1.0, "a sender dies", interval_s=0.01)
        assert d.health()["ok"] is False and d.senders_died == 1
        assert REGISTRY.get_sample_value("emostream_webhook_senders_alive") == 1

        class Consumer:
            assigned = True
            webhooks = d

        class Store:
            settings = RedisOptions()
            retention = RetentionOptions()

            async def ping(self):
                return True

        app = create_app(Store(), consumer=Consumer())
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api"
        ) as client:
            health = await client.get("/healthz")
        assert health.status_code == 503
        assert health.json()["webhooks"]["senders_alive"] == 1
    finally:
        d._finish = WebhookDispatcher._finish.__get__(d)
        await d.stop()


async def wait_for_entries(log: Log, n: int) -> None:
    await wait_until(lambda: len(log.entries) >= n, 5.0, f"{n} log entries", interval_s=0.01)


# ---- SSRF: resolution and connection are replaced in-process; nothing leaves loopback ----------


class RecordingBackend:
    """Stands in for the network: records where it was asked to connect, connects nowhere."""

    def __init__(self) -> None:
        self.connects: list[tuple[str, int]] = []

    async def connect_tcp(self, host, port, **kwargs):
        import httpcore

        self.connects.append((host, port))
        raise httpcore.ConnectError("recorded, not connected")

    async def sleep(self, seconds):
        await asyncio.sleep(seconds)


NAMES = {
    "bot.internal.example": ["10.1.2.3"],
    "metadata.example": ["169.254.169.254"],
    "rebind.example": ["93.184.216.34", "127.0.0.1"],
    "public.example": ["93.184.216.34"],
}


async def fake_resolve(host: str, port: int) -> list[str]:
    """getaddrinfo without the network: numeric spellings as inet_aton reads them, fixed names."""
    import ipaddress
    import socket

    if host in NAMES:
        return NAMES[host]
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        return [socket.inet_ntoa(socket.inet_aton(host))]  # "0", "2130706433", "127.1", "0x7f.1"


async def deliver_to(url: str, allow=()) -> tuple[dict, RecordingBackend]:
    from emostream.aggregator.webhooks.guard import guarded_transport

    backend = RecordingBackend()
    log = Log()
    transport = guarded_transport(list(allow), resolve=fake_resolve, inner=backend)
    d = WebhookDispatcher(options(), log, transport=transport)
    await d.start()
    try:
        entry = await d.deliver(Delivery("r" * 32, url, make_alert()))
    finally:
        await d.stop()
    return entry, backend


@pytest.mark.parametrize(
    "url",
    [
        "http://0/hook",
        "http://2130706433/hook",
        "http://127.1:6379/",
        "http://0x7f.1/",
        "http://[::1]:8000/",
        "http://[::ffff:10.0.0.1]/",
        "http://10.0.0.8/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://metadata.example/",
        "http://bot.internal.example/hook",
        "http://rebind.example/hook",
        "http://[fd00:ec2::254]/",
    ],
)
async def test_internal_addresses_are_refused_without_connecting(url):
    entry, backend = await deliver_to(url)
    assert backend.connects == []  # never tried: no port scan through the delivery log
    assert not entry["delivered"] and entry["attempts"] == 1  # not retried either
    assert "destination address not allowed" in entry["error"]
    assert "6379" not in entry["error"] and "refused" not in entry["error"].lower()


async def test_public_addresses_are_connected_to_by_the_checked_address():
    entry, backend = await deliver_to("http://public.example:8080/hook")
    assert backend.connects[0] == ("93.184.216.34", 8080)  # the checked address, not the name
    assert not entry["delivered"] and "recorded, not connected" in entry["error"]


async def test_allowed_networks_reach_on_premises_bots():
    entry, backend = await deliver_to("http://bot.internal.example/hook", allow=["10.0.0.0/8"])
    assert set(backend.connects) == {("10.1.2.3", 80)}  # tried (and retried: it is allowed)


async def test_a_loopback_bot_is_reached_only_when_loopback_is_allowed(bot):
    from ipaddress import ip_network

    url = f"http://127.0.0.1:{bot.server_address[1]}/alerts"
    for allow, delivered in (([], False), ([ip_network("127.0.0.0/8")], True)):
        log = Log()
        async with WebhookDispatcher(options(webhook_allow_networks=allow), log) as d:
            d.submit("r" * 32, url, make_alert())
            await wait_for_entries(log, 1)
        assert log.entries[0][1]["delivered"] is delivered
    assert len(bot.received) == 1


# ---- slow and huge receivers (real sockets on loopback) ----------------------------------------


async def _serve(handler) -> tuple[asyncio.AbstractServer, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"


async def test_a_receiver_that_trickles_is_cut_off_at_the_total_deadline():
    async def trickle(reader, writer):
        await reader.read(65536)
        try:
            for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n":
                writer.write(bytes([byte]))  # each read is quick; the whole answer is not
                await writer.drain()
                await asyncio.sleep(0.1)
        except ConnectionError:
            pass
        writer.close()

    server, url = await _serve(trickle)
    log = Log()
    opts = options(
        webhook_timeout_s=0.5, webhook_max_attempts=1, webhook_allow_networks=["127.0.0.0/8"]
    )
    t0 = time.monotonic()
    async with server, WebhookDispatcher(opts, log) as d:
        d.submit("r" * 32, url, make_alert())
        await wait_for_entries(log, 1)
    assert time.monotonic() - t0 < 2.0
    entry = log.entries[0][1]
    assert not entry["delivered"] and entry["error"] == "timed out after 0.5 s"


async def test_a_huge_response_body_is_not_read():
    sent = 0

    async def firehose(reader, writer):
        nonlocal sent
        await reader.read(65536)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n")
        chunk = b"x" * 65536
        try:
            while sent < 1_000_000_000:
                writer.write(chunk)
                await writer.drain()
                sent += len(chunk)
        except ConnectionError:
            pass
        writer.close()

    server, url = await _serve(firehose)
    log = Log()
    async with server, WebhookDispatcher(options(webhook_allow_networks=["127.0.0.0/8"]), log) as d:
        d.submit("r" * 32, url, make_alert())
        await wait_for_entries(log, 1)
        await asyncio.sleep(0.2)
    assert log.entries[0][1]["delivered"]
    assert sent < 64 * 1024 * 1024  # the connection was closed, not drained (was: read whole)


async def test_a_slow_receiver_delays_only_its_own_rule():
    release = asyncio.Event()
    fast_done = []

    async def handler(request):
        if request.url.path == "/slow":
            await release.wait()
        else:
            fast_done.append(time.monotonic())
        return httpx.Response(204)

    log = Log()
    opts = options(webhook_concurrency=2, webhook_timeout_s=30)
    async with WebhookDispatcher(opts, log, transport=httpx.MockTransport(handler)) as d:
        for i in range(6):  # more than there are senders
            d.submit("a" * 32, "http://127.0.0.1:9/slow", make_alert(f"{i:032d}"))
        await asyncio.sleep(0.05)
        t0 = time.monotonic()
        d.submit("b" * 32, "http://127.0.0.1:9/fast", make_alert("f" * 32))
        await wait_for_entries(log, 1)
        assert log.entries[0][0] == "b" * 32 and fast_done[0] - t0 < 0.5
        release.set()
        await wait_for_entries(log, 7)
    assert sorted(e["alert_id"] for r, e in log.entries if r == "a" * 32) == [
        f"{i:032d}" for i in range(6)
    ]
    assert all(e["delivered"] for _, e in log.entries)


async def test_deleting_a_rule_stops_its_queued_and_retrying_deliveries():
    calls = []
    exists = {"r" * 32: True}

    def handler(request):
        calls.append(request)
        exists["r" * 32] = False  # deleted while this attempt was under way
        return httpx.Response(503)

    async def rule_exists(rule_id):
        return exists[rule_id]

    recorded = Log()
    async with WebhookDispatcher(
        options(webhook_concurrency=1, webhook_max_attempts=5),
        recorded,
        transport=httpx.MockTransport(handler),
        rule_exists=rule_exists,
    ) as d:
        for i in range(4):
            d.submit("r" * 32, "http://127.0.0.1:9/hook", make_alert(f"{i:032d}"))
        await asyncio.sleep(0.5)
    assert len(calls) == 1  # no retry, none of the three queued behind it
    assert recorded.entries == []  # and no delivery log written for the deleted rule
