"""The API's read budget (issue 33, 9): token buckets weighted by the Redis reads a request
implies, per key or address, plus one shared by expensive requests; 429 with Retry-After."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from emostream.aggregator import create_app
from emostream.aggregator.api.read_budget import REFUSED, ReadBudget, read_cost
from emostream.aggregator.state.store import EventStore
from emostream.api_limits import ReadBudgetOptions
from emostream.settings import RedisOptions


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def budget(**options) -> tuple[ReadBudget, Clock]:
    clock = Clock()
    return ReadBudget(ReadBudgetOptions(**options), clock), clock


def test_a_client_spends_its_burst_then_waits_for_the_refill():
    b, clock = budget(per_client_per_s=1000, per_client_burst=8000, total_per_s=0)
    assert b.charge("a", 3601) == 0 and b.charge("a", 3601) == 0
    wait = b.charge("a", 3601)
    assert wait == pytest.approx((3601 - (8000 - 7202)) / 1000)
    assert b.charge("b", 3601) == 0  # another client has its own bucket
    clock.t += wait
    assert b.charge("a", 3601) == 0
    assert b.charge("a", 1) > 0


def test_expensive_reads_share_a_total_but_cheap_reads_of_others_go_on():
    b, _ = budget(per_client_per_s=1000, total_per_s=100, total_burst=8000, cheap_cost=20)
    assert b.charge("a", 3601) == 0 and b.charge("b", 3601) == 0
    assert b.charge("c", 3601) > 0  # the shared bucket is spent
    assert b.charge("c", 3) == 0  # a cheap read draws only on its own client
    assert b.charge("a", 3) == 0


def test_costs_over_the_burst_are_capped_and_clients_are_bounded():
    b, clock = budget(per_client_per_s=10, per_client_burst=3700, total_per_s=0, max_clients=2)
    assert b.charge("a", 10**9) == 0  # takes the whole burst, not refused for ever
    clock.t += 370
    assert b.charge("a", 10**9) == 0
    for who in ("b", "c", "d"):
        b.charge(who, 1)
    assert len(b._clients) == 2


def test_costs_come_from_the_parameters():
    assert read_cost("/v1/streams/c/windows", {}, ["3600"]) == 3601
    assert read_cost("/v1/streams/c/windows", {}, [str(w) for w in range(1, 11)]) == 11
    assert read_cost("/v1/streams/c/windows", {}, []) == 301
    assert read_cost("/v1/streams/c/windows", {}, ["x", "99999"]) == 301
    assert read_cost("/v1/streams/c/sessions", {"limit": "100"}, []) == 102
    assert read_cost("/v1/streams/c/events", {"limit": "500"}, []) == 52
    assert read_cost("/v1/streams/c/state", {}, []) == 3
    assert read_cost("/v1/streams", {"limit": "1000"}, []) == 101


@pytest.fixture
async def keyed():
    # The store is never started: only requests refused before Redis are made (422, 429).
    app = create_app(
        EventStore(RedisOptions()),
        read_keys=[SecretStr("flood-key-0123"), SecretStr("quiet-key-0123")],
        reads=ReadBudgetOptions(per_client_per_s=100, per_client_burst=8000, max_window_sizes=4),
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c


async def test_a_client_over_budget_gets_429_with_retry_after(keyed):
    before = REFUSED.labels("/v1/streams/{stream_id}/windows")._value.get()
    url = "/v1/streams/cam/windows?window_s=3600&window_s=bad"  # charged, then 422
    flood, quiet = {"X-API-Key": "flood-key-0123"}, {"X-API-Key": "quiet-key-0123"}
    assert [(await keyed.get(url, headers=flood)).status_code for _ in range(2)] == [422, 422]
    refused = await keyed.get(url, headers=flood)
    assert refused.status_code == 429, refused.text
    assert 1 <= int(refused.headers["Retry-After"]) <= 30
    assert "3601" in refused.json()["detail"]
    assert (await keyed.get(url, headers=quiet)).status_code == 422
    assert REFUSED.labels("/v1/streams/{stream_id}/windows")._value.get() == before + 1
    unknown = await keyed.get(url, headers={"X-API-Key": "wrong-key-0123"})
    assert unknown.status_code == 401  # the key is checked before the budget


async def test_window_sizes_per_request_are_capped(keyed):
    many = "&".join(f"window_s={w}" for w in range(1, 6))
    r = await keyed.get(f"/v1/streams/cam/windows?{many}", headers={"X-API-Key": "quiet-key-0123"})
    assert r.status_code == 422 and "at most 4" in r.text


async def test_without_keys_each_client_address_has_its_own_budget():
    app = create_app(
        EventStore(RedisOptions()),
        reads=ReadBudgetOptions(per_client_per_s=100, per_client_burst=8000, total_per_s=0),
    )
    url = "/v1/streams/cam/windows?window_s=3600&window_s=bad"

    def at(address: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1")

    async with at("127.0.0.2") as flood, at("127.0.0.3") as other:
        assert [(await flood.get(url)).status_code for _ in range(3)] == [422, 422, 429]
        assert (await other.get(url)).status_code == 422
