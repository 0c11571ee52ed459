"""The dashboard's overview in a real headless Chromium: events published to the topic show up
on the stream's card, live, after its history.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them); skipped without.
The stream view, rules and the README's pictures: ``test_dashboard_views.py``.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaProducer
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from emostream.aggregator import EventConsumer, create_app
from emostream.aggregator.state.store import EventStore
from emostream.config import AggregatorOptions
from emostream.kafka.clients import ensure_topics
from emostream.local.servers import free_port
from emostream.runtime.lifecycle import ApiServer
from emostream.schemas import EmotionEventV1
from tests.integration.dashboard_browser import chromium, console_errors
from tests.synthetic import make_event
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

WINDOW = (1280, 800)
WAIT_S = 20.0
PUBLISH_EVERY_S = 0.25
HISTORY_S = 20.0  # happy events captured this far back, so the timeline has some history to draw
STREAM, TRACK = "lobby-cam", "t7"

# One atomic read of what the card shows (a redraw replaces its parts up to 10 times a second).
SNAPSHOT_JS = """
const card = document.querySelector(`[data-testid=stream-card][data-stream="${arguments[0]}"]`);
if (!card) return null;
const cells = [...card.querySelectorAll(".strip span")].map(c => c.className);
return {
  faces: [...card.querySelectorAll("[data-testid=face]")].map(f => f.textContent),
  timeline: {happy: cells.filter(c => c === "e-happy").length,
             angry: cells.filter(c => c === "e-angry").length},
  seen: parseInt(card.querySelector("p.muted").textContent.split(" · ")[1]),
  badges: card.querySelector(".badges").textContent,
  status: document.getElementById("status").dataset.state,
};
"""


@pytest.fixture
def browser(monkeypatch):
    with chromium(monkeypatch, WINDOW) as driver:
        yield driver


def live_event(seq: int, label: str, phase_started: datetime, ago_s: float = 0.0) -> bytes:
    """A face event captured ``ago_s`` ago; the dashboard lists only tracks seen in the last 5 s."""
    at = datetime.now(UTC) - timedelta(seconds=ago_s)
    doc = make_event(
        0,
        stream=STREAM,
        seq=seq,
        track=TRACK,
        label=label,
        p=0.8,
        smoothed={"label": label, "p": 0.7},
        base=at,
    ).model_dump()
    doc["smoothed"]["stable_for_s"] = max((at - phase_started).total_seconds(), 0.0)
    return EmotionEventV1.model_validate(doc).model_dump_json().encode()


async def until(driver, condition, what: str):
    """``WebDriverWait`` off the event loop, which must keep serving the page meanwhile."""
    wait = WebDriverWait(driver, WAIT_S, poll_frequency=0.2)
    return await asyncio.to_thread(wait.until, condition, f"dashboard never showed {what}")


def track_shows(label: str, for_s: float = 0.0):
    """The track's face line says ``label`` held for at least ``for_s`` ("t7happy for 2.4 s")."""

    def check(driver):
        page = driver.execute_script(SNAPSHOT_JS, STREAM)
        for face in (page or {}).get("faces", []):
            if face.startswith(f"{TRACK}{label} for ") and face.endswith(" s"):
                held = face.removeprefix(f"{TRACK}{label} for ").removesuffix(" s")
                if held.replace(".", "").isdigit() and float(held) >= for_s:
                    return page
        return False

    return check


async def test_dashboard_shows_published_events_live(
    browser, kafka_settings, redis_settings, tmp_path, group_id
):
    await ensure_topics(kafka_settings)
    port = free_port()
    phase = {"label": "happy", "since": datetime.now(UTC) - timedelta(seconds=HISTORY_S)}

    async def publish(producer: AIOKafkaProducer) -> None:
        seqs = itertools.count()
        steps = int(HISTORY_S / PUBLISH_EVERY_S)
        for ago_s in (HISTORY_S - i * PUBLISH_EVERY_S for i in range(steps)):
            await producer.send(
                kafka_settings.events_topic,
                live_event(next(seqs), "happy", phase["since"], ago_s),
                key=STREAM.encode(),
            )
        # Then the current label, steadily: the WebSocket pushes only events stored after it
        # subscribed, so a trickle makes the test independent of that timing.
        for seq in seqs:
            await producer.send_and_wait(
                kafka_settings.events_topic,
                live_event(seq, phase["label"], phase["since"]),
                key=STREAM.encode(),
            )
            await asyncio.sleep(PUBLISH_EVERY_S)

    group = AggregatorOptions(group_id=group_id("agg"))
    async with (
        EventStore(redis_settings) as store,
        EventConsumer(kafka_settings, group, store) as consumer,
        ApiServer(create_app(store, consumer=consumer), "127.0.0.1", port),
        AIOKafkaProducer(bootstrap_servers=kafka_settings.bootstrap_servers) as producer,
    ):
        consuming = asyncio.create_task(consumer.run())
        publishing = None
        try:
            # The group join, before the page's own waits start.
            await wait_until(lambda: consumer.assigned, 30, "partitions assigned", 0.1)
            await asyncio.to_thread(browser.get, f"http://127.0.0.1:{port}/dashboard")
            await until(
                browser,
                lambda d: d.find_element(By.ID, "status").get_attribute("data-state") == "live",
                "the WebSocket connected",
            )

            publishing = asyncio.create_task(publish(producer))
            happy = await until(browser, track_shows("happy"), f"track {TRACK} as happy")
            phase.update(label="angry", since=datetime.now(UTC))
            # Held a while, so the timeline (and the README's picture) shows a band of each.
            angry = await until(
                browser, track_shows("angry", for_s=2.0), f"track {TRACK} turning angry"
            )

            logs = await asyncio.to_thread(browser.get_log, "browser")
            # Leave the page before the server stops, or its reconnect attempts log errors.
            await asyncio.to_thread(browser.get, "about:blank")
        finally:
            if publishing is not None:
                publishing.cancel()
            consumer.request_stop()
            await asyncio.wait_for(consuming, timeout=20)
            if publishing is not None:
                await asyncio.gather(publishing, return_exceptions=True)

    assert angry["status"] == "live" and "frames/s" in angry["badges"]
    assert happy["timeline"]["happy"] > 0
    assert angry["seen"] > happy["seen"] > 0  # history, then live events on top
    assert angry["timeline"]["angry"] > 0 and angry["timeline"]["happy"] > 0  # both phases drawn
    assert console_errors(logs) == []
