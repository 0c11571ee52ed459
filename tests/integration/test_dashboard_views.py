"""The people's dashboard in a real headless Chromium against the broker, Redis, the worker
(packaged model, Haar detector) and the demo's sample clip (a public-domain photo).

History first: the stream view, opened after the clip stopped, shows every part from the API.
Then a rule made through the form fires on a second pass of the clip and its alert appears.
A wrong key is a visible state; no console error; no request leaves the page's origin.
``EMOSTREAM_SCREENSHOT=1`` saves docs/dashboard_overview.png and docs/dashboard_stream.png
(``scripts/capture_screenshot.sh``).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from emostream.aggregator import EventConsumer, create_app
from emostream.aggregator.state.store import EventStore
from emostream.config import AggregatorOptions, IngestOptions, WorkerOptions, WorkerSettings
from emostream.ingest import Ingest
from emostream.kafka.clients import ensure_topics
from emostream.local.servers import free_port
from emostream.runtime.lifecycle import ApiServer
from emostream.worker import Worker
from emostream.worker.main import build_processor
from tests.integration.dashboard_browser import chromium, console_errors, offsite_requests
from tests.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

DOCS = Path(__file__).resolve().parents[2] / "docs"
STREAM = "sample-astronaut"
READ, ADMIN = "read-key-0123456789", "admin-key-0123456789"
HOOKS = ["stream-card", "face", "prob", "window-distribution", "change", "alert", "session"]

COUNT_JS = """
const n = (t, root) => (root || document).querySelectorAll(`[data-testid="${t}"]`).length;
return {hooks: Object.fromEntries(arguments[0].map(t => [t, n(t)])),
        probs: [...document.querySelectorAll('[data-testid="face"]')].map(f => n("prob", f)),
        status: document.getElementById("status").dataset.state,
        text: document.getElementById("view").textContent};
"""


@pytest.fixture
def browser(monkeypatch):
    with chromium(monkeypatch, (1280, 800)) as driver:
        yield driver


async def page(driver, url: str) -> None:
    await asyncio.to_thread(driver.get, url)


async def js(driver, script: str, *args):
    return await asyncio.to_thread(driver.execute_script, script, *args)


async def wait_for(driver, script: str, what: str, timeout_s: float = 30.0):
    wait = WebDriverWait(driver, timeout_s, poll_frequency=0.25)
    return await asyncio.to_thread(wait.until, lambda d: d.execute_script(script), what)


async def run_clip(kafka_settings) -> None:
    opts = IngestOptions(source="sample", stream_id=STREAM, fps=15)
    async with Ingest(kafka_settings, opts) as ingest:
        await ingest.run()


async def fill_rule_form(driver, threshold: str) -> None:
    def fill():
        form = driver.find_element(By.CSS_SELECTOR, "form.rules-form")
        name = form.find_element(By.ID, "f-name")
        if not name.get_attribute("value"):
            name.send_keys("any face, any emotion")
            for box in form.find_elements(By.CSS_SELECTOR, "input[name=emotions]"):
                box.click()
            form.find_element(By.ID, "f-for_seconds").send_keys("0.5")
            form.find_element(By.ID, "f-stream_id").send_keys(STREAM)
            form.find_element(By.ID, "f-cooldown_seconds").clear()
            form.find_element(By.ID, "f-cooldown_seconds").send_keys("0")
        form.find_element(By.ID, "f-threshold").clear()
        form.find_element(By.ID, "f-threshold").send_keys(threshold)
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    await asyncio.to_thread(fill)


def full_page_png(driver, path: Path) -> None:
    """The whole page (up to 2400 px tall) at 1280 px wide, then the viewport as it was."""
    height = min(driver.execute_script("return document.documentElement.scrollHeight"), 2400)
    for h in (height, 800):
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1280, "height": h, "deviceScaleFactor": 1, "mobile": False},
        )
        if h == height:
            time.sleep(0.5)  # the resize's redraw
            assert driver.save_screenshot(str(path))


def open_session_timeline(driver) -> int:
    """Open the newest session's timeline: how many track strips it draws."""
    driver.find_element(By.CSS_SELECTOR, "[data-testid=session] button").click()
    WebDriverWait(driver, 20, poll_frequency=0.2).until(
        lambda d: d.find_elements(
            By.CSS_SELECTOR, "[data-testid=session] .session-timeline .strip"
        ),
        "no session timeline",
    )
    return len(driver.find_elements(By.CSS_SELECTOR, "[data-testid=session] .strip"))


async def history_ready(http: httpx.AsyncClient) -> bool:
    changes = await http.get(f"/v1/streams/{STREAM}/changes")
    events = await http.get(f"/v1/streams/{STREAM}/events", params={"limit": 100})
    return (
        changes.status_code == 200 and changes.json()["count"] > 0 and events.json()["count"] >= 60
    )


async def test_dashboard_history_then_live_rules_and_alerts(
    browser, kafka_settings, redis_settings, group_id
):
    await ensure_topics(kafka_settings)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = WorkerSettings(
        kafka=kafka_settings,
        worker=WorkerOptions(group_id=group_id("worker"), max_batch_frames=4, track_min_hits=1),
    )
    settings.detector = settings.detector.model_copy(update={"kind": "haar"})
    seen: dict[str, object] = {}
    logs: list[dict] = []
    async with (
        EventStore(redis_settings) as store,
        EventConsumer(kafka_settings, AggregatorOptions(group_id=group_id("agg")), store) as agg,
        Worker(kafka_settings, settings.worker, build_processor(settings)) as worker,
    ):
        app = create_app(
            store, consumer=agg, read_keys=[SecretStr(READ)], admin_keys=[SecretStr(ADMIN)]
        )
        tasks = [asyncio.create_task(agg.run()), asyncio.create_task(worker.run())]
        clip = None
        try:
            async with (
                ApiServer(app, "127.0.0.1", port),
                httpx.AsyncClient(base_url=base, headers={"X-API-Key": READ}) as http,
            ):
                await wait_until(lambda: agg.assigned, 30, "aggregator partitions", 0.1)
                await run_clip(kafka_settings)  # the stream runs a while, then stops
                await wait_until(lambda: history_ready(http), 60, "events and changes", 0.5)

                # A wrong key: a visible, named state, never a blank page.
                await page(browser, f"{base}/dashboard")
                await js(browser, "localStorage.setItem('emostream-key', 'wrong-key')")
                await page(browser, f"{base}/dashboard/streams/{STREAM}")
                seen["wrong"] = await wait_for(
                    browser,
                    "return document.getElementById('status').dataset.state === 'refused' && "
                    "document.getElementById('view').textContent",
                    "the refused key shown",
                )
                logs += [dict(e, stage="wrong-key") for e in browser.get_log("browser")]

                # History: 3 s after opening, with nothing live (the clip has stopped).
                await js(browser, "localStorage.setItem('emostream-key', arguments[0])", READ)
                await page(browser, f"{base}/dashboard/streams/{STREAM}")
                await asyncio.sleep(3.0)
                seen["stream"] = await js(browser, COUNT_JS, HOOKS)
                seen["session_strips"] = await asyncio.to_thread(open_session_timeline, browser)
                await page(browser, f"{base}/dashboard")
                await asyncio.sleep(1.5)
                seen["overview"] = await js(browser, COUNT_JS, HOOKS)

                # Rules: the API's validation error at its field, nothing lost; then created.
                await page(browser, f"{base}/dashboard/rules")
                await wait_for(browser, "return document.querySelector('form.rules-form')", "form")
                await js(
                    browser, "sessionStorage.setItem('emostream-admin-key', arguments[0])", ADMIN
                )
                await page(browser, f"{base}/dashboard/rules")
                await wait_for(browser, "return document.querySelector('form.rules-form')", "form")
                await fill_rule_form(browser, "2")
                seen["invalid"] = await wait_for(
                    browser,
                    "const e = document.getElementById('err-threshold').textContent;"
                    "return e && {error: e, name: document.getElementById('f-name').value};",
                    "the threshold's error at its field",
                )
                logs += [dict(e, stage="invalid-rule") for e in browser.get_log("browser")]
                await fill_rule_form(browser, "0.5")
                await wait_for(
                    browser, "return document.querySelector('[data-testid=rule]')", "the rule"
                )
                seen["rules"] = await js(browser, COUNT_JS, ["rules", "rule"])

                # Live: the clip again; the rule fires and its alert appears on the stream view.
                await page(browser, f"{base}/dashboard/streams/{STREAM}")
                await wait_for(
                    browser,
                    "return document.getElementById('status').dataset.state === 'live'",
                    "the live connection",
                )
                clip = asyncio.create_task(run_clip(kafka_settings))
                await wait_for(
                    browser,
                    "return document.querySelector('[data-testid=alert]')",
                    "the rule's alert",
                    60,
                )
                seen["delivery"] = await wait_for(
                    browser,
                    "const b = document.querySelector('[data-testid=alert] .badge');"
                    "return b && !b.textContent.includes('checking') && b.textContent;",
                    "the alert's delivery status, read from the API",
                )
                seen["live"] = await js(browser, COUNT_JS, HOOKS)
                if os.environ.get("EMOSTREAM_SCREENSHOT") == "1":
                    await asyncio.to_thread(full_page_png, browser, DOCS / "dashboard_stream.png")
                    # The overview after the alert: the card flags it.
                    await page(browser, f"{base}/dashboard")
                    await asyncio.sleep(2.0)
                    await asyncio.to_thread(
                        browser.save_screenshot, str(DOCS / "dashboard_overview.png")
                    )
                logs += [dict(e, stage="ok") for e in browser.get_log("browser")]
                offsite = offsite_requests(browser, base)
                await page(browser, "about:blank")
                if clip is not None:
                    await clip
        finally:
            if clip is not None and not clip.done():
                clip.cancel()
            for c in (agg, worker):
                c.request_stop()
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), timeout=30)

    stream = seen["stream"]
    assert stream["status"] == "live", stream
    hooks = stream["hooks"]
    assert all(hooks[h] > 0 for h in HOOKS if h not in ("alert", "stream-card")), hooks
    assert stream["probs"] and all(n == 7 for n in stream["probs"]), stream["probs"]
    assert seen["overview"]["hooks"]["stream-card"] == 1
    assert seen["session_strips"] >= 1  # a session opens its own timeline
    assert "refused" in seen["wrong"] and "read key" in seen["wrong"]
    assert seen["invalid"]["name"] == "any face, any emotion"  # the form kept what was typed
    assert "less than or equal to 1" in seen["invalid"]["error"]
    assert seen["rules"]["hooks"] == {"rules": 1, "rule": 1}
    assert seen["live"]["hooks"]["alert"] > 0
    assert seen["delivery"] == "no webhook"  # the rule has none
    assert offsite == [], offsite
    errors = console_errors(logs, allowed={"wrong-key": "401", "invalid-rule": "422"})
    assert errors == [], errors
    assert json.dumps(seen)  # plain data
