"""The dashboard in a real headless Chromium: events published to the topic show up on the page.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them); skipped without.
``EMOSTREAM_SCREENSHOT=1`` saves the page to docs/dashboard.png (the README's picture).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from emostream.aggregator import EventConsumer, create_app
from emostream.aggregator.state.store import EventStore
from emostream.config import AggregatorOptions
from emostream.kafka.clients import ensure_topics
from emostream.local.servers import free_port
from emostream.runtime.lifecycle import ApiServer
from emostream.schemas import EmotionEventV1
from tests.synthetic import make_event
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "dashboard.png"
WINDOW = (1280, 900)
WAIT_S = 20.0
PUBLISH_EVERY_S = 0.25
HISTORY_S = 20.0  # happy events captured this far back, so the timeline has some history to draw
STREAM, TRACK = "lobby-cam", "t7"
COLORS = {"happy": "#2ca02c", "angry": "#d62728"}  # dashboard.html's COLORS

# One atomic read of what the page shows: draw() rewrites the track rows every 500 ms, so
# element handles found one call earlier can already be stale.
SNAPSHOT_JS = """
const box = document.getElementById("s-" + arguments[0]);
const colors = arguments[1];
if (!box) return null;
const c = box.querySelector("[data-testid=timeline]");
const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
const hex = (i) => "#" + [px[i], px[i + 1], px[i + 2]]
  .map(v => v.toString(16).padStart(2, "0")).join("");
const timeline = Object.fromEntries(Object.keys(colors).map(k => [k, 0]));
for (let i = 0; i < px.length; i += 4) {
  for (const [label, color] of Object.entries(colors)) if (hex(i) === color) timeline[label] += 1;
}
return {
  title: box.querySelector("[data-testid=stream-title]").textContent,
  tracks: [...box.querySelectorAll("[data-testid=track]")].map(row => Object.fromEntries(
    [...row.querySelectorAll("td")].map(td => [td.dataset.testid, td.textContent]))),
  timeline,
};
"""


@pytest.fixture
def browser(monkeypatch):
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.skip(
            f"{' and '.join(missing)} missing; install them with "
            "`sudo apt-get install -y chromium chromium-driver` (Debian/Ubuntu)"
        )
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must never download a browser
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        # --window-size sizes the window, not the viewport; pin the viewport so the PNG is 1280x900.
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": WINDOW[0], "height": WINDOW[1], "deviceScaleFactor": 1, "mobile": False},
        )
        yield driver
    finally:
        driver.quit()


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
    """The track's row says ``label``, held for at least ``for_s`` (the "for" column)."""

    def check(driver):
        page = driver.execute_script(SNAPSHOT_JS, STREAM, COLORS)
        rows = [t for t in (page or {}).get("tracks", []) if t.get("track-id") == TRACK]
        shown = rows and rows[0]["smoothed"] == label and float(rows[0]["stable-for"][:-2]) >= for_s
        return page if shown else False

    return check


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


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
                EC.text_to_be_present_in_element((By.ID, "status"), "live"),
                "the WebSocket connected",
            )

            publishing = asyncio.create_task(publish(producer))
            happy = await until(browser, track_shows("happy"), f"track {TRACK} as happy")
            phase.update(label="angry", since=datetime.now(UTC))
            # Held a while, so the timeline (and the README's picture) shows a band of each.
            angry = await until(
                browser, track_shows("angry", for_s=2.0), f"track {TRACK} turning angry"
            )

            keep = os.environ.get("EMOSTREAM_SCREENSHOT") == "1"
            shot = SCREENSHOT if keep else tmp_path / "dashboard.png"
            shot.parent.mkdir(parents=True, exist_ok=True)
            assert await asyncio.to_thread(browser.save_screenshot, str(shot))
            status = await asyncio.to_thread(lambda: browser.find_element(By.ID, "status").text)
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

    assert status == "live"
    assert happy["timeline"]["happy"] > 0
    stream, events_total = angry["title"].split(" · ")  # "lobby-cam · 92 live events"
    assert stream == STREAM
    assert int(events_total.split()[0]) > int(happy["title"].split(" · ")[1].split()[0]) > 0
    [row] = [t for t in angry["tracks"] if t["track-id"] == TRACK]
    assert row["smoothed"] == "angry" and row["raw"] == "angry 80%"
    assert row["stable-for"].endswith(" s")
    assert angry["timeline"]["angry"] > 0 and angry["timeline"]["happy"] > 0  # both phases drawn
    assert png_size(shot) == WINDOW
    # The page has no favicon; Chromium's automatic /favicon.ico request 404s. Anything else counts.
    errors = [e for e in logs if e["level"] == "SEVERE" and "/favicon.ico " not in e["message"]]
    assert errors == []
