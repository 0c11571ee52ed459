"""Deliveries verify with the ``standardwebhooks`` library (a loopback receiver the test starts),
with either of two active secrets while one is rotated out."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_network

import pytest
from pydantic import SecretStr, ValidationError
from standardwebhooks import Webhook, WebhookVerificationError

from emostream.aggregator.webhooks.delivery import WebhookDispatcher
from emostream.config import AggregatorSettings, AlertOptions
from emostream.webhooks import new_secret, secret_key
from tests.unit.test_webhooks import Log, make_alert, wait_for_entries

CURRENT = new_secret()
PREVIOUS = new_secret()


class Receiver(ThreadingHTTPServer):
    """A receiver that checks every request with ``standardwebhooks.Webhook(secret).verify``."""

    daemon_threads = True

    def __init__(self, secret: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.webhook = Webhook(secret)
        self.verified: list[dict] = []
        self.refused: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            self.server.verified.append(self.server.webhook.verify(body, dict(self.headers)))
            status = 204
        except WebhookVerificationError as exc:
            self.server.refused.append(str(exc))
            status = 401
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - quiet
        pass


@pytest.fixture
def receivers():
    started = []

    def start(secret: str) -> Receiver:
        server = Receiver(secret)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


def opts(*secrets: str) -> AlertOptions:
    current, previous = (*secrets, None)[:2]
    return AlertOptions(
        webhook_secret=SecretStr(current),
        webhook_previous_secret=SecretStr(previous) if previous else None,
        webhook_allow_networks=[ip_network("127.0.0.0/8")],
        webhook_max_attempts=1,
    )


async def deliver(options: AlertOptions, url: str) -> dict:
    log = Log()
    async with WebhookDispatcher(options, log) as d:
        d.submit("r" * 32, url, make_alert())
        await wait_for_entries(log, 1)
    return log.entries[0][1]


async def test_a_delivery_verifies_with_the_standardwebhooks_library(receivers):
    receiver = receivers(CURRENT)
    entry = await deliver(opts(CURRENT), receiver.url)
    assert entry["delivered"] and entry["status_code"] == 204, (entry, receiver.refused)
    assert receiver.verified[0]["alert_id"] == "a" * 32 and receiver.refused == []


async def test_during_rotation_receivers_with_either_secret_verify(receivers):
    """Both signatures go in ``webhook-signature``: receivers move to the new secret at their
    own pace, and one still on a third secret is refused."""
    on_new, on_old, on_other = receivers(CURRENT), receivers(PREVIOUS), receivers(new_secret())
    rotating = opts(CURRENT, PREVIOUS)
    assert (await deliver(rotating, on_new.url))["delivered"]
    assert (await deliver(rotating, on_old.url))["delivered"]
    refused = await deliver(rotating, on_other.url)
    assert not refused["delivered"] and refused["status_code"] == 401
    assert on_other.refused == ["No matching signature found"]
    # Rotation done (previous unset): the old secret no longer verifies.
    assert (await deliver(opts(CURRENT), on_old.url))["status_code"] == 401


def test_the_previous_secret_alone_signs_nothing():
    assert AlertOptions(webhook_previous_secret=SecretStr(PREVIOUS)).signing_secrets() == []
    assert opts(CURRENT, PREVIOUS).signing_secrets() == [CURRENT, PREVIOUS]


def test_new_secrets_are_whsec_base64_of_32_random_bytes():
    secret = new_secret()
    assert secret.startswith("whsec_") and len(secret_key(secret)) == 32
    assert Webhook(secret)._whsecret == secret_key(secret) and new_secret() != secret


@pytest.mark.parametrize("bad", ["s", "whsec_", "!!!!"])
def test_a_secret_without_a_key_is_refused_at_start_up(monkeypatch, bad):
    monkeypatch.setenv("EMOSTREAM_ALERTS__WEBHOOK_SECRET", bad)
    with pytest.raises(ValidationError, match="whsec_"):
        AggregatorSettings(_env_file=None)
