"""The aggregator reads events from a newer producer: unknown fields are ignored, not dead-lettered
(docs/EVENTS.md, compatible changes)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from emostream.aggregator import EventConsumer, create_app
from emostream.aggregator.state.store import EventStore
from emostream.config import AggregatorOptions
from emostream.kafka.clients import ensure_topics
from tests.integration.test_aggregator_faults import event, send
from tests.waiting import wait_until

pytestmark = pytest.mark.slow


def newer(value: bytes) -> bytes:
    """The event as a later v1 producer might send it: optional fields it does not know yet."""
    doc = json.loads(value) | {"camera_zone": "entrance"}
    doc["face"]["landmarks"] = [[10, 12], [30, 12]]
    return json.dumps(doc).encode()


async def test_events_with_unknown_fields_are_stored(kafka_settings, group_id, redis_settings):
    await ensure_topics(kafka_settings)
    async with (
        EventStore(redis_settings) as store,
        EventConsumer(kafka_settings, AggregatorOptions(group_id=group_id("agg")), store) as c,
    ):
        task = asyncio.create_task(c.run())
        api = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(store, consumer=c)), base_url="http://a"
        )
        try:
            await send(
                kafka_settings.bootstrap_servers,
                kafka_settings.events_topic,
                [newer(event("evolve", i)) for i in range(3)],
            )

            async def stored() -> bool:
                r = await api.get("/v1/streams/evolve/events")
                return r.status_code == 200 and len(r.json()["events"]) == 3

            await wait_until(stored, 40.0, interval_s=0.3)
            assert c.dead_letters == 0  # before: each one dead-lettered as invalid
            events = (await api.get("/v1/streams/evolve/events")).json()["events"]
            assert "camera_zone" not in events[0]  # stored as this version's model knows it
        finally:
            c.request_stop()
            await asyncio.wait_for(task, timeout=20)
            await api.aclose()
