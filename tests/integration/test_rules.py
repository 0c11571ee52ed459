"""Rules end to end: API -> events topic -> aggregator -> alerts topic, signed webhook,
delivery log; and the stream's session agrees with the events and windows endpoints."""

from __future__ import annotations

import asyncio
import threading
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from pydantic import SecretStr
from standardwebhooks import Webhook

from emostream.aggregator import EventConsumer, create_app
from emostream.aggregator.rules.store import RuleStore
from emostream.aggregator.state.store import EventStore
from emostream.config import AggregatorOptions, AlertOptions
from emostream.kafka.clients import ensure_topics
from emostream.schemas import AlertV1
from tests.integration.test_aggregator_faults import send
from tests.synthetic import make_event, webhook_bot
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

SECRET = "whsec_Ym90LXNlY3JldC1ib3Qtc2VjcmV0"
READ, ADMIN = {"X-API-Key": "rk"}, {"X-API-Key": "ak"}


def scenario(stream: str, base: datetime) -> list:
    """5 s of one track: angry (smoothed 0.85) for 4 s, a dip, then a stable change to happy."""
    events = []
    for i in range(21):
        if i <= 16:
            raw, sm = ("angry", 0.85), {"label": "angry", "p": 0.85, "changed": i == 0}
        elif i == 17:
            raw, sm = ("happy", 0.6), {"label": "angry", "p": 0.5}
        else:
            raw, sm = ("happy", 0.85), {"label": "happy", "p": 0.8, "changed": i == 18}
        events.append(
            make_event(
                i * 0.25, stream=stream, seq=i, label=raw[0], p=raw[1], smoothed=sm, base=base
            )
        )
    return events


async def read_alerts(kafka_settings, n: int, timeout_s: float = 30) -> list[AlertV1]:
    consumer = AIOKafkaConsumer(
        kafka_settings.alerts_topic,
        auto_offset_reset="earliest",
        bootstrap_servers=kafka_settings.bootstrap_servers,
    )
    await consumer.start()
    out = []
    try:
        async with asyncio.timeout(timeout_s):
            while len(out) < n:
                for recs in (await consumer.getmany(timeout_ms=500)).values():
                    out.extend(AlertV1.model_validate_json(r.value) for r in recs)
        for recs in (await consumer.getmany(timeout_ms=1000)).values():  # nothing more
            out.extend(AlertV1.model_validate_json(r.value) for r in recs)
    finally:
        await consumer.stop()
    return out


async def test_rule_alerts_webhook_delivery_log_and_sessions(
    kafka_settings, redis_settings, group_id
):
    await ensure_topics(kafka_settings)
    bot_module = webhook_bot()
    bot = bot_module.make_server(SECRET, port=0)
    threading.Thread(target=bot.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{bot.server_address[1]}/alerts"
    # The bot listens on loopback, which webhooks may reach only when allowed explicitly.
    alerts_opts = AlertOptions(
        webhook_secret=SecretStr(SECRET),
        webhook_backoff_s=0.05,
        webhook_allow_networks=["127.0.0.0/8"],
    )
    stream = f"desk-{uuid.uuid4().hex[:6]}"
    # Rule timing is capture time: 5 s of scenario "happen" instantly, a few seconds ago.
    events = scenario(stream, datetime.now(UTC) - timedelta(seconds=8))
    try:
        async with (
            EventStore(redis_settings) as store,
            EventConsumer(
                kafka_settings,
                AggregatorOptions(group_id=group_id("agg")),
                store,
                alerts_opts,
            ) as consumer,
        ):
            task = asyncio.create_task(consumer.run())
            app = create_app(
                store,
                consumer=consumer,
                read_keys=[SecretStr("rk")],
                admin_keys=[SecretStr("ak")],
                alerts=alerts_opts,
            )
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://api"
            ) as api:
                upset = {
                    "kind": "probability_above",
                    "name": "upset customer",
                    "stream_id": stream,
                    "emotions": ["angry", "disgust"],
                    "threshold": 0.6,
                    "for_seconds": 2,
                    "webhook_url": hook,
                }
                assert (await api.post("/v1/rules", json=upset, headers=READ)).status_code == 403
                created = await api.post("/v1/rules", json=upset, headers=ADMIN)
                assert created.status_code == 201, created.text
                rule_id = created.json()["id"]
                cheer = {
                    "kind": "stable_change",
                    "name": "cheered up",
                    "stream_id": stream,
                    "to": ["happy"],
                }
                cheer_id = (await api.post("/v1/rules", json=cheer, headers=ADMIN)).json()["id"]
                listed = (await api.get("/v1/rules", headers=READ)).json()
                assert [r["id"] for r in listed["rules"]] == [rule_id, cheer_id]

                await send(
                    kafka_settings.bootstrap_servers,
                    kafka_settings.events_topic,
                    [e.model_dump_json().encode() for e in events],
                )

                async def webhook_arrived() -> bool:
                    return len(bot.received) >= 1

                await wait_until(webhook_arrived, timeout_s=60, interval_s=0.3)
                alert_doc, body, headers = bot.received[0]
                # The bot accepted it, and its verifier agrees on the exact bytes it got.
                assert bot_module.verify(SECRET, headers, body)
                Webhook(SECRET).verify(body, headers)  # and so does the Standard Webhooks one
                assert bot.rejected == 0
                alert = AlertV1.model_validate_json(body)
                assert (
                    alert.rule_id == rule_id
                    and alert.stream_id == stream
                    and alert.track_id == "t1"
                )
                assert alert.fired_at == events[8].captured_at  # 2 s after the first angry event
                assert alert.event_id == events[8].event_id and alert.summary.source == "smoothed"

                on_topic = await read_alerts(kafka_settings, 2)
                by_kind = {a.kind: a for a in on_topic}
                assert len(on_topic) == 2 and set(by_kind) == {"probability_above", "stable_change"}
                assert by_kind["probability_above"].alert_id == alert.alert_id
                change = by_kind["stable_change"]
                assert change.rule_id == cheer_id and change.event_id == events[18].event_id
                assert (change.summary.from_label, change.summary.to_label) == ("angry", "happy")

                async def logged() -> bool:
                    r = await api.get(f"/v1/rules/{rule_id}/deliveries", headers=READ)
                    return r.json()["count"] >= 1

                await wait_until(logged, 40.0, interval_s=0.3)
                log = (await api.get(f"/v1/rules/{rule_id}/deliveries", headers=READ)).json()
                entry = log["deliveries"][0]
                assert entry["alert_id"] == alert.alert_id and entry["delivered"]
                assert entry["attempts"] == 1 and entry["status_code"] == 200
                assert entry["delivered_at"] and entry["error"] is None
                cheer_log = await api.get(f"/v1/rules/{cheer_id}/deliveries", headers=READ)
                assert cheer_log.json()["count"] == 0  # no webhook on that rule

                # Sessions count the same events as the events and windows endpoints.
                ev_count = (
                    await api.get(
                        f"/v1/streams/{stream}/events", params={"limit": 500}, headers=READ
                    )
                ).json()["count"]
                sessions = (await api.get(f"/v1/streams/{stream}/sessions", headers=READ)).json()
                assert ev_count == len(events)
                assert sessions["count"] == 1
                s = sessions["sessions"][0]
                assert s["events"] == ev_count and s["active"] and s["ended_at"] is None
                assert s["tracks_seen"] == 1 and s["summary"]["dominant"] == "angry"
                windows = (
                    await api.get(
                        f"/v1/streams/{stream}/windows", params={"window_s": 3600}, headers=READ
                    )
                ).json()["windows"]
                assert windows[0]["events"] == s["events"]
                one = await api.get(
                    f"/v1/streams/{stream}/sessions/{s['session_id']}", headers=READ
                )
                assert one.status_code == 200 and one.json()["events"] == ev_count
                missing = await api.get(f"/v1/streams/{stream}/sessions/{'0' * 16}", headers=READ)
                assert missing.status_code == 404

                # A redelivered batch is deduplicated: no second alert, no double count.
                consumed = consumer.consumed
                await send(
                    kafka_settings.bootstrap_servers,
                    kafka_settings.events_topic,
                    [e.model_dump_json().encode() for e in events],
                )

                async def replayed() -> bool:
                    return consumer.consumed >= consumed + len(events)

                await wait_until(replayed, 40.0, interval_s=0.3)
                assert consumer.alerts.fired == 2 and len(bot.received) == 1
                again = (await api.get(f"/v1/streams/{stream}/sessions", headers=READ)).json()
                assert again["sessions"][0]["events"] == ev_count

                assert (await api.delete(f"/v1/rules/{rule_id}", headers=READ)).status_code == 403
                assert (await api.delete(f"/v1/rules/{rule_id}", headers=ADMIN)).status_code == 204
                assert (await api.get(f"/v1/rules/{rule_id}", headers=READ)).status_code == 404
                assert (
                    await api.get(f"/v1/rules/{rule_id}/deliveries", headers=READ)
                ).status_code == 404
            assert not task.done()
            consumer.request_stop()
            await asyncio.wait_for(task, timeout=20)
    finally:
        bot.shutdown()
        bot.server_close()


async def test_read_keys_see_webhook_urls_without_credentials(redis_settings):
    """Creating the rule sends nothing: webhooks fire only on alerts."""
    read, admin = "read-key-000000", "admin-key-00000"
    secret_url = "https://bot:hunter2@bot.example/alerts?token=abc123"
    async with EventStore(redis_settings) as store:
        app = create_app(
            store,
            read_keys=[SecretStr(read)],
            admin_keys=[SecretStr(admin)],
            alerts=AlertOptions(webhook_secret=SecretStr(SECRET)),
        )
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1"
        ) as api:
            created = await api.post(
                "/v1/rules",
                headers={"X-API-Key": admin},
                json={"kind": "stable_change", "name": "x", "webhook_url": secret_url},
            )
            rule_id = created.json()["id"]
            await RuleStore(store.redis, store.key_prefix, store.retention).record_delivery(
                rule_id, {"alert_id": "a", "url": secret_url}
            )
            as_reader = [
                await api.get(path, headers={"X-API-Key": read})
                for path in ("/v1/rules", f"/v1/rules/{rule_id}", f"/v1/rules/{rule_id}/deliveries")
            ]
            as_admin = await api.get(f"/v1/rules/{rule_id}", headers={"X-API-Key": admin})
    for r in as_reader:
        assert r.status_code == 200 and "hunter2" not in r.text and "abc123" not in r.text
        assert "bot.example" in r.text
    assert as_admin.json()["webhook_url"] == secret_url
