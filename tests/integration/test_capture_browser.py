"""``/capture`` in a real headless Chromium with a fake camera playing a clip of a real face.

The page uploads the camera over the ingest WebSocket; the worker classifies the face; the page
reads the aggregator's live feed and draws the box and label. Needs Debian's ``chromium`` and
``chromium-driver`` and the reference photos (``tests.conftest.REFERENCE_DATA``); skipped
without. ``EMOSTREAM_SCREENSHOT=1`` saves the page to docs/capture.png (the README's picture;
``scripts/capture_screenshot.sh``). The clip is made from a Face Research Lab London Set photo
(CC BY 4.0), never from the KDEF photos, which may not be published.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

import tests.conftest as shared_conftest
from emostream.aggregator import EventConsumer, create_app
from emostream.aggregator.state.store import EventStore
from emostream.config import (
    AggregatorOptions,
    IngestHttpOptions,
    IngestOptions,
    WorkerOptions,
    WorkerSettings,
)
from emostream.ingest.http_app import create_ingest_app
from emostream.ingest.http_publish import FramePublisher
from emostream.kafka.clients import ensure_topics
from emostream.local.servers import free_port
from emostream.models import EMOTIONS
from emostream.runtime.lifecycle import ApiServer
from emostream.worker import Worker
from emostream.worker.main import build_processor
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "capture.png"
WINDOW = (1100, 820)
WAIT_S = 20.0
STREAM = "browser-cam"
# The reference folder's constant (REFERENCE_DATA; SHARED_DATA in older checkouts).
REFERENCE = getattr(shared_conftest, "REFERENCE_DATA", None) or shared_conftest.SHARED_DATA
PHOTOS = Path(REFERENCE) / "data" / "photos" / "frames"

SHOWN_JS = """
const labels = [...document.querySelectorAll("#boxes .box .label")].map(e => e.textContent);
return {labels, latency: document.getElementById("latency").textContent,
        status: document.getElementById("status").textContent,
        sent: document.getElementById("sent").textContent};
"""


def face_clip(path: Path, frames: int = 20) -> Path:
    """A 640x480 Y4M clip of one London Set photo drifting slowly (Chromium loops it)."""
    photos = sorted(PHOTOS.glob("happy/london_*.jpg"))
    if not photos:
        pytest.skip(f"no reference photos under {PHOTOS} (the team's shared data folder)")
    photo = cv2.resize(cv2.imread(str(photos[0])), (420, 420))
    with path.open("wb") as out:
        out.write(b"YUV4MPEG2 W640 H480 F10:1 Ip A1:1 C420jpeg\n")
        for i in range(frames):
            canvas = np.full((480, 640, 3), 235, np.uint8)
            x = 90 + int(20 * np.sin(2 * np.pi * i / frames))
            canvas[30:450, x : x + 420] = photo
            out.write(b"FRAME\n" + cv2.cvtColor(canvas, cv2.COLOR_BGR2YUV_I420).tobytes())
    return path


@pytest.fixture
def browser(monkeypatch, tmp_path):
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.skip(f"{' and '.join(missing)} missing; `apt-get install chromium chromium-driver`")
    clip = face_clip(tmp_path / "face.y4m")
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must never download a browser
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",  # grant the camera without a prompt
        f"--use-file-for-fake-video-capture={clip}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": WINDOW[0], "height": WINDOW[1], "deviceScaleFactor": 1, "mobile": False},
        )
        yield driver
    finally:
        driver.quit()


def face_shown(driver):
    page = driver.execute_script(SHOWN_JS)
    labels = [t.split()[0] for t in page["labels"] if t.split()]
    ok = labels and all(lbl in EMOTIONS for lbl in labels) and page["latency"].endswith("ms")
    return page if ok else False


async def test_capture_page_shows_the_pipeline_answer(
    browser, kafka_settings, redis_settings, tmp_path, group_id
):
    await ensure_topics(kafka_settings)
    api_port, ingest_port = free_port(), free_port()
    ingest_origin = f"http://127.0.0.1:{ingest_port}"
    worker_settings = WorkerSettings(
        kafka=kafka_settings,
        worker=WorkerOptions(group_id=group_id("worker"), max_batch_frames=4, track_min_hits=1),
    )
    worker_settings.detector = worker_settings.detector.model_copy(update={"kind": "haar"})
    opts = IngestOptions(
        http=IngestHttpOptions(port=ingest_port, aggregator_url=f"http://127.0.0.1:{api_port}")
    )
    async with (
        EventStore(redis_settings) as store,
        EventConsumer(kafka_settings, AggregatorOptions(group_id=group_id("agg")), store) as agg,
        Worker(kafka_settings, worker_settings.worker, build_processor(worker_settings)) as worker,
        FramePublisher(kafka_settings, 16) as publisher,
    ):
        api = create_app(store, consumer=agg, browser_origins=[ingest_origin])
        tasks = [asyncio.create_task(agg.run()), asyncio.create_task(worker.run())]
        try:
            async with (
                ApiServer(api, "127.0.0.1", api_port),
                ApiServer(create_ingest_app(publisher, opts), "127.0.0.1", ingest_port),
            ):
                await wait_until(lambda: agg.assigned, 30, "aggregator partitions", 0.1)
                url = f"{ingest_origin}/capture?stream={STREAM}&fps=5&width=480&autostart"
                await asyncio.to_thread(browser.get, url)
                wait = WebDriverWait(browser, WAIT_S, poll_frequency=0.2)
                page = await asyncio.to_thread(
                    wait.until, face_shown, "no face box and emotion label within 20 s"
                )
                keep = os.environ.get("EMOSTREAM_SCREENSHOT") == "1"
                shot = SCREENSHOT if keep else tmp_path / "capture.png"
                await asyncio.sleep(1.0 if keep else 0)  # a few more frames: a steady picture
                assert await asyncio.to_thread(browser.save_screenshot, str(shot))
                logs = await asyncio.to_thread(browser.get_log, "browser")
                await asyncio.to_thread(browser.get, "about:blank")
        finally:
            for c in (agg, worker):
                c.request_stop()
            await asyncio.wait_for(asyncio.gather(*tasks), timeout=20)
    assert int(page["sent"]) > 0 and publisher.sent > 0
    errors = [e for e in logs if e["level"] == "SEVERE"]
    assert not errors, errors  # no CSP violation, no failed connection
