"""API input checks that answer before any Redis call: auth (401/403), 413 and 422.

The store is never started: a request that reached Redis would fail with RuntimeError.
"""

import json

import httpx
import pytest
from pydantic import SecretStr

from emostream.aggregator import create_app
from emostream.aggregator.state.store import EventStore
from emostream.config import AlertOptions
from emostream.settings import RedisOptions

READ, ADMIN = "r-key", "a-key"
RULE_ID = "0123456789abcdef0123456789abcdef"
GOOD_RULE = {
    "kind": "probability_above",
    "name": "upset",
    "emotions": ["angry"],
    "threshold": 0.6,
    "for_seconds": 3,
}


@pytest.fixture
async def client():
    app = create_app(
        EventStore(RedisOptions()),
        read_keys=[SecretStr(READ)],
        admin_keys=[SecretStr(ADMIN)],
        alerts=AlertOptions(webhook_secret=SecretStr("whsec_c2VjcmV0")),
        max_body_bytes=64 * 1024,
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c


def key(k: str | None) -> dict:
    return {"X-API-Key": k} if k else {}


@pytest.mark.parametrize(
    ("method", "path", "k", "status"),
    [
        ("POST", "/v1/rules", None, 401),
        ("POST", "/v1/rules", "wrong", 401),
        ("POST", "/v1/rules", READ, 403),
        ("DELETE", f"/v1/rules/{RULE_ID}", None, 401),
        ("DELETE", f"/v1/rules/{RULE_ID}", READ, 403),
        ("GET", "/v1/rules", None, 401),
        ("GET", "/v1/rules", "wrong", 401),
        ("GET", f"/v1/rules/{RULE_ID}/deliveries", None, 401),
        ("GET", "/v1/streams/cam-1/sessions", None, 401),
        ("GET", "/v1/streams/cam-1/sessions/0123456789abcdef", "wrong", 401),
    ],
)
async def test_auth(client, method, path, k, status):
    body = GOOD_RULE if method == "POST" else None
    r = await client.request(method, path, headers=key(k), json=body)
    assert r.status_code == status, r.text


@pytest.mark.parametrize(
    "path",
    [
        "/v1/streams/cam-1/sessions?limit=-1",
        "/v1/streams/cam-1/sessions?limit=0",
        "/v1/streams/cam-1/sessions?limit=abc",
        "/v1/streams/cam-1/sessions?limit=101",
        "/v1/streams/cam-1/sessions/not-a-session-id",
        "/v1/streams/bad%20stream/sessions",
        f"/v1/rules/{RULE_ID}/deliveries?limit=-1",
        f"/v1/rules/{RULE_ID}/deliveries?limit=abc",
        f"/v1/rules/{RULE_ID}/deliveries?limit=1000",
        "/v1/rules/NOT-AN-ID",
        "/v1/streams/cam-1/events?limit=-1",
        "/v1/streams/cam-1/events?limit=501",
    ],
)
async def test_bad_query_and_path_values_are_422(client, path):
    r = await client.get(path, headers=key(READ))
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["msg"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({**GOOD_RULE, "colour": "red"}, "Extra inputs are not permitted"),
        ({**GOOD_RULE, "threshold": "high"}, "valid number"),
        ({**GOOD_RULE, "threshold": 2}, "less than or equal to 1"),
        ({**GOOD_RULE, "emotions": ["rage"]}, "angry"),
        ({**GOOD_RULE, "kind": "mood_swing"}, "does not match any of the expected tags"),
        ({k: v for k, v in GOOD_RULE.items() if k != "for_seconds"}, "Field required"),
        ({**GOOD_RULE, "webhook_url": "gopher://x"}, "http:// or https://"),
        ({**GOOD_RULE, "id": RULE_ID}, "Extra inputs are not permitted"),
        ([GOOD_RULE], "valid dictionary"),
    ],
)
async def test_malformed_rules_are_422_with_a_reason(client, body, reason):
    r = await client.post("/v1/rules", json=body, headers=key(ADMIN))
    assert r.status_code == 422, r.text
    assert reason in r.text


async def test_invalid_json_is_422(client):
    r = await client.post(
        "/v1/rules", content=b"{nope", headers=key(ADMIN) | {"Content-Type": "application/json"}
    )
    assert r.status_code == 422


async def test_oversized_body_is_413(client):
    big = {**GOOD_RULE, "name": "x" * (65 * 1024)}
    r = await client.post("/v1/rules", json=big, headers=key(ADMIN))
    assert r.status_code == 413
    assert r.json()["detail"] == "request body too large: the limit is 65536 bytes"


async def test_oversized_chunked_body_is_413(client):
    async def chunks():
        for _ in range(20):
            yield b" " * 4096

    r = await client.post(
        "/v1/rules", content=chunks(), headers=key(ADMIN) | {"Content-Type": "application/json"}
    )
    assert r.status_code == 413


async def test_oversized_body_is_413_even_without_a_key(client):
    r = await client.post("/v1/rules", content=b"x" * 70_000)
    assert r.status_code == 413


async def test_webhook_rules_need_a_secret():
    app = create_app(EventStore(RedisOptions()), admin_keys=[SecretStr(ADMIN)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.post(
            "/v1/rules", json={**GOOD_RULE, "webhook_url": "http://bot/hook"}, headers=key(ADMIN)
        )
    assert r.status_code == 400 and "EMOSTREAM_ALERTS__WEBHOOK_SECRET" in r.json()["detail"]


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
@pytest.mark.parametrize("field", ["threshold", "for_seconds", "cooldown_seconds"])
async def test_non_finite_numbers_in_rules_are_422(client, field, number):
    body = dict(GOOD_RULE, **{field: 0.5})
    raw = json.dumps(body).replace(f'"{field}": 0.5', f'"{field}": {number.decode()}').encode()
    r = await client.post(
        "/v1/rules", content=raw, headers=key(ADMIN) | {"Content-Type": "application/json"}
    )
    assert r.status_code == 422, r.text
    assert field in r.text
