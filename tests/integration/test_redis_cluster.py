"""The aggregator on a Redis Cluster (3 masters + 3 replicas on loopback, ``redis_cluster``):
found from the same URL, its load spread over the masters, its API, windows, sessions, rules
and live push answering as on one node."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import redis
from pydantic import SecretStr, TypeAdapter

from emostream.aggregator import create_app
from emostream.aggregator.feeds import FeedStore
from emostream.aggregator.live.hub import LiveHub
from emostream.aggregator.rules.model import RuleSpec, TrackState, new_rule
from emostream.aggregator.rules.store import RuleStore
from emostream.aggregator.state.store import EventStore
from emostream.schemas import EmotionEventV1
from emostream.settings import RedisOptions
from tests.integration.redis_cluster import RedisCluster6
from tests.integration.test_rules import test_rule_alerts_webhook_delivery_log_and_sessions
from tests.synthetic import make_event

STREAMS = [f"cam-{i:03d}" for i in range(200)]
PER_STREAM = 10
OWN = {"info", "cluster", "ping", "command", "client", "hello", "config"}  # probes, handshakes


def backlog(base: datetime) -> list[EmotionEventV1]:
    """Ten events per stream over 2 s, two tracks, a stable change now and then."""
    out = []
    for seq in range(PER_STREAM):
        for i, sid in enumerate(STREAMS):
            label = "happy" if seq < 6 else "sad"
            out.append(
                make_event(
                    seq * 0.2,
                    stream=sid,
                    seq=seq,
                    track=f"t{seq % 2}",
                    label=label,
                    smoothed={"label": label, "changed": seq in (0, 6)},
                    base=base + timedelta(milliseconds=i),  # an order for the stream list
                )
            )
    return out


def calls(port: int) -> int:
    """Commands a node ran since it started, the probes and handshakes left out."""
    with redis.Redis(port=port, decode_responses=True) as r:
        stats = r.info("commandstats")
    return sum(
        int(v["calls"])
        for name, v in stats.items()
        if name.removeprefix("cmdstat_").split("|")[0] not in OWN
    )


def cluster_settings(cluster: RedisCluster6) -> RedisOptions:
    return RedisOptions(url=SecretStr(cluster.url), key_prefix=f"c{uuid.uuid4().hex[:8]}")


async def store_all(store: EventStore, events: list[EmotionEventV1]) -> None:
    feeds = FeedStore(store.redis, store.key_prefix, store.retention)
    for i in range(0, len(events), 500):  # as the consumer does, a batch at a time
        fresh = await store.add_new_events(events[i : i + 500])
        await feeds.add_changes(fresh)


async def answers(store: EventStore, sids: list[str]) -> dict:
    """What the API serves for ``sids`` (and the stream list)."""
    app = create_app(store)
    out: dict = {}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1"
    ) as api:
        listed, cursor = [], None
        while True:
            params = {"limit": 70} | ({"cursor": cursor} if cursor else {})
            page = (await api.get("/v1/streams", params=params)).json()
            listed += [(s["stream_id"], s["events_total"]) for s in page["streams"]]
            if (cursor := page["next_cursor"]) is None:
                break
        out["streams"] = sorted(listed)
        for sid in sids:
            for path in ("state", "events?limit=5", "tracks", "sessions", "changes"):
                out[f"{sid}/{path}"] = (await api.get(f"/v1/streams/{sid}/{path}")).json()
            windows = await api.get(f"/v1/streams/{sid}/windows?window_s=60&window_s=300")
            assert windows.status_code == 200, windows.text
            out[f"{sid}/windows"] = windows.json()["windows"]
    return out


async def test_streams_spread_over_the_masters_and_read_as_on_one_node(
    redis_cluster: RedisCluster6, redis_settings: RedisOptions
):
    events = backlog(datetime.now(UTC) - timedelta(seconds=20))
    settings = cluster_settings(redis_cluster)
    masters = redis_cluster.primary_ports()
    assert len(masters) == 3
    async with EventStore(settings) as clustered, EventStore(redis_settings) as single:
        assert clustered.cluster and not single.cluster  # from the server, no setting
        before = {port: calls(port) for port in masters}
        await store_all(clustered, events)
        spent = {port: calls(port) - before[port] for port in masters}
        assert min(spent.values()) > 0
        assert max(spent.values()) <= 1.5 * min(spent.values()), spent
        per_event = sum(spent.values()) / len(events)
        assert per_event <= 8, spent
        await store_all(single, events)
        assert await clustered.add_new_events(events[:50]) == []  # duplicates on the cluster too
        sample = STREAMS[::40]
        on_cluster, on_one = await answers(clustered, sample), await answers(single, sample)
    assert len(on_cluster["streams"]) == len(STREAMS)
    assert all(total == PER_STREAM for _, total in on_cluster["streams"])
    assert on_cluster == on_one


async def test_rules_on_a_cluster(redis_cluster: RedisCluster6):
    settings = cluster_settings(redis_cluster)
    async with EventStore(settings) as store:
        rules = RuleStore(store.redis, store.key_prefix, store.retention)
        spec = TypeAdapter(RuleSpec).validate_python({"kind": "stable_change", "name": "x"})
        rule = new_rule(spec)
        await rules.create(rule)
        assert [r.id for r in await rules.list()] == [rule.id]
        keys = [(rule.id, sid, "t1") for sid in STREAMS[:30]]  # state keys on many slots
        await rules.save_states({k: TrackState() for k in keys}, {rule.id: rule})
        assert set(await rules.load_states(keys)) == set(keys)
        assert await rules.record_delivery(rule.id, {"alert_id": "a"})  # one script, one slot
        assert [d["alert_id"] for d in await rules.deliveries(rule.id, 10)] == ["a"]
        assert await rules.delete(rule.id) and not await rules.record_delivery(rule.id, {})


@pytest.mark.slow
async def test_rules_end_to_end_on_a_cluster(
    redis_cluster: RedisCluster6, kafka_settings, group_id
):
    """The single-node rules test (alerts, webhook, delivery log, sessions vs windows), run
    unchanged against the cluster."""
    settings = cluster_settings(redis_cluster)
    await test_rule_alerts_webhook_delivery_log_and_sessions(kafka_settings, settings, group_id)


async def test_live_push_from_every_master(redis_cluster: RedisCluster6):
    settings = cluster_settings(redis_cluster)
    events = backlog(datetime.now(UTC) - timedelta(seconds=5))
    hub = LiveHub(settings, max_queue=len(events) * 2)
    try:
        everything = await hub.join(None)
        one = await hub.join({STREAMS[7]}, {"event", "change"})
        assert everything is not None and one is not None
        await asyncio.sleep(0.5)  # the shard subscriptions reach their masters
        async with EventStore(settings) as store:
            await store_all(store, events)
        got = []
        while (doc := await everything.next(2.0)) is not None:
            got.append(doc)
        typed = []
        while (item := await one.next_item(1.0)) is not None:
            typed.append(item)
    finally:
        await hub.stop()
    assert len(got) == len(events)  # every stream's events, whichever master stored them
    kinds = [kind for kind, _ in typed]
    assert kinds.count("event") == PER_STREAM and kinds.count("change") == 2


async def test_no_cluster_node_answering_is_a_503(redis_cluster: RedisCluster6):
    from redis.asyncio.cluster import RedisCluster

    from emostream.local.servers import free_port

    async with EventStore(cluster_settings(redis_cluster)) as store:
        app = create_app(store)
        live, store._redis = store._redis, RedisCluster(host="127.0.0.1", port=free_port())
        try:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1"
            ) as api:
                r = await api.get("/v1/streams")
        finally:
            await store._redis.aclose()
            store._redis = live
    assert r.status_code == 503, r.text
