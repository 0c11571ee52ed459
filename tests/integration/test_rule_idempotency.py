"""``Idempotency-Key`` on ``POST /v1/rules`` against a real Redis: a retried create gives the same
rule (before: two identical POSTs made two rules), another body with the key gets 422."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from pydantic import SecretStr

from emostream.aggregator import create_app
from emostream.aggregator.rules.idempotency import IDEMPOTENCY_TTL_S
from emostream.aggregator.state.store import EventStore

ADMIN, OTHER_ADMIN = "admin-key-0123456789", "admin-key-abcdefghij"
RULE = {
    "kind": "probability_above",
    "name": "upset",
    "emotions": ["angry", "sad"],
    "threshold": 0.6,
    "for_seconds": 2,
}


@pytest.fixture
async def api(redis_settings):
    async with EventStore(redis_settings) as store:
        app = create_app(store, admin_keys=[SecretStr(ADMIN), SecretStr(OTHER_ADMIN)])
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api"
        ) as client:
            yield client, store
        await app.state.live_hub.stop()


def post(client: httpx.AsyncClient, body: dict, key: str | None, api_key: str = ADMIN):
    headers = {"X-API-Key": api_key} | ({"Idempotency-Key": key} if key else {})
    return client.post("/v1/rules", json=body, headers=headers)


async def rule_count(client: httpx.AsyncClient) -> int:
    return (await client.get("/v1/rules", headers={"X-API-Key": ADMIN})).json()["count"]


async def test_the_same_key_and_body_give_the_same_rule(api):
    client, store = api
    first = await post(client, RULE, "create-upset-1")
    again = await post(client, dict(reversed(RULE.items())), "create-upset-1")  # key order
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert await rule_count(client) == 1
    keys = [k async for k in store.redis.scan_iter(match=f"{store.key_prefix}:idempotency:*")]
    assert len(keys) == 1
    assert IDEMPOTENCY_TTL_S - 5 < await store.redis.ttl(keys[0]) <= IDEMPOTENCY_TTL_S


async def test_without_a_key_each_post_makes_a_rule(api):
    client, _ = api
    assert (await post(client, RULE, None)).status_code == 201
    assert (await post(client, RULE, None)).status_code == 201
    assert await rule_count(client) == 2


async def test_the_same_key_with_another_body_is_refused(api):
    client, _ = api
    assert (await post(client, RULE, "k-1")).status_code == 201
    other = await post(client, RULE | {"threshold": 0.7}, "k-1")
    assert other.status_code == 422 and "Idempotency-Key" in other.json()["detail"]
    assert await rule_count(client) == 1


async def test_keys_are_per_client_and_concurrent_retries_make_one_rule(api):
    client, _ = api
    answers = await asyncio.gather(*(post(client, RULE, "shared") for _ in range(5)))
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["id"] for a in answers}) == 1
    other = await post(client, RULE | {"threshold": 0.9}, "shared", api_key=OTHER_ADMIN)
    assert other.status_code == 201  # another client's key space
    assert await rule_count(client) == 2


async def test_a_refused_create_does_not_hold_the_key(api):
    client, _ = api
    refused = await post(client, RULE | {"webhook_url": "http://bot.example/h"}, "k-2")
    assert refused.status_code == 400  # no signing secret on this aggregator
    assert (await post(client, RULE, "k-2")).status_code == 201


@pytest.mark.parametrize("bad", [b"", b"has space", b"x" * 256, "caf\u00e9".encode()])
async def test_a_malformed_key_is_a_422(api, bad):
    client, _ = api
    answer = await client.post(
        "/v1/rules",
        json=RULE,
        headers={"X-API-Key": ADMIN, "Idempotency-Key": bad},
    )
    assert answer.status_code == 422
    assert await rule_count(client) == 0
