"""The dashboard at desktop and phone width, by keyboard, empty, and with markup in event fields:
headless Chromium against the real API and Redis (events written straight into the store)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from emostream.aggregator import create_app
from emostream.aggregator.feeds import FeedStore
from emostream.aggregator.state.store import EventStore
from emostream.local.servers import free_port
from emostream.runtime.lifecycle import ApiServer
from emostream.schemas import AlertSummary, AlertV1
from tests.integration.dashboard_browser import chromium, console_errors
from tests.synthetic import make_event, probs_with

pytestmark = pytest.mark.slow
MARKUP = '<img src=x data-x="1">'
OVERFLOW_JS = "return document.documentElement.scrollWidth - window.innerWidth;"


@pytest.fixture
def browser(monkeypatch):
    with chromium(monkeypatch, (1280, 800)) as driver:
        yield driver


def resize(driver, width: int, height: int, mobile: bool) -> None:
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
    )


def visit(driver, url: str, ready: str) -> None:
    """Open ``url`` and wait until an element matches the CSS selector ``ready``."""
    driver.get(url)
    WebDriverWait(driver, 20, poll_frequency=0.2).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, ready), f"{url}: no {ready}"
    )


async def seed(store: EventStore) -> None:
    now = datetime.now(UTC) - timedelta(seconds=20)
    events = [
        make_event(
            i * 0.5,
            stream="door",
            track="t1",
            label="sad",
            smoothed={"label": "sad", "changed": i == 0},
            base=now,
        )
        for i in range(30)
    ]
    await store.add_events(events)
    feeds = FeedStore(store.redis, store.key_prefix, store.retention)
    await feeds.add_changes(events)
    at = events[-1].captured_at
    await feeds.add_alerts(
        [
            AlertV1(
                alert_id="a" * 32,
                rule_id="b" * 32,
                rule_name=MARKUP,
                kind="probability_above",
                stream_id="door",
                track_id="t1",
                episode_started_at=at,
                fired_at=at,
                event_id=events[-1].event_id,
                frame_seq=1,
                summary=AlertSummary(
                    source="smoothed",
                    label="sad",
                    confidence=0.8,
                    probabilities=probs_with("sad", 0.8),
                ),
            )
        ]
    )


def widths_and_alert(driver, base: str) -> dict:
    """Horizontal overflow of both views at desktop and phone width; the alert's text."""
    out: dict = {}
    for width, height, mobile in ((1280, 800, False), (390, 844, True)):
        resize(driver, width, height, mobile)
        visit(driver, f"{base}/dashboard", "[data-testid=stream-card]")
        overview = driver.execute_script(OVERFLOW_JS)
        visit(driver, f"{base}/dashboard/streams/door", "[data-testid=alert]")
        out[width] = (overview, driver.execute_script(OVERFLOW_JS))
    alert = driver.find_element(By.CSS_SELECTOR, "[data-testid=alert]")
    out["alert"] = (alert.text, len(alert.find_elements(By.TAG_NAME, "img")))
    resize(driver, 1280, 800, False)
    return out


def wait_state(driver, state: str) -> str:
    """The status pill's text once its state is ``state``."""
    status = driver.find_element(By.ID, "status")
    WebDriverWait(driver, 30, poll_frequency=0.1).until(
        lambda d: status.get_attribute("data-state") == state, f"status never {state}"
    )
    return status.text


def tab_to_stream(driver, base: str) -> tuple[list[str], str]:
    """Tab from the top until the stream's link, Enter: what had focus, and the page opened."""
    visit(driver, f"{base}/dashboard", "[data-testid=stream-card]")
    driver.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    focused = []
    for _ in range(8):
        el = driver.switch_to.active_element
        focused.append(el.text or el.get_attribute("id") or el.tag_name)
        if el.text == "door":
            el.send_keys(Keys.ENTER)
            break
        el.send_keys(Keys.TAB)
    WebDriverWait(driver, 20).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "[data-testid=face]")
    )
    return focused, driver.current_url


async def test_empty_desktop_phone_keyboard_and_text_only(browser, redis_settings):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # Selenium blocks: off the event loop, which serves the page meanwhile.
    async with (
        EventStore(redis_settings) as store,
        ApiServer(create_app(store), "127.0.0.1", port) as app_server,
    ):
        await asyncio.to_thread(visit, browser, f"{base}/dashboard", "[data-testid=empty]")
        empty = await asyncio.to_thread(
            lambda: browser.find_element(By.CSS_SELECTOR, "[data-testid=empty]").text
        )
        await seed(store)
        seen = await asyncio.to_thread(widths_and_alert, browser, base)
        focused, opened = await asyncio.to_thread(tab_to_stream, browser, base)
        await asyncio.to_thread(wait_state, browser, "live")
        logs = await asyncio.to_thread(browser.get_log, "browser")
        server = ApiServer(create_app(store), "127.0.0.1", port)
        await app_server.stop()  # the aggregator goes away: the page says it reconnects
        retrying = await asyncio.to_thread(wait_state, browser, "retrying")
        await server.start()
        back = await asyncio.to_thread(wait_state, browser, "live")
        await asyncio.to_thread(browser.get, "about:blank")
        await server.stop()
    assert "emostream demo" in empty and "/capture" in empty and "emostream ingest" in empty
    # Nothing wider than the screen (a vertical scrollbar makes it negative).
    assert max(seen[1280] + seen[390]) <= 0, seen
    assert MARKUP in seen["alert"][0] and seen["alert"][1] == 0  # text, never markup
    assert focused[0] == "Skip to content" and "door" in focused, focused
    assert opened == f"{base}/dashboard/streams/door"
    assert console_errors(logs) == []
    assert "reconnecting in" in retrying and back == "live"
