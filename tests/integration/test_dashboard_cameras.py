"""The overview's camera panel in a real headless Chromium: the registry on the test broker, one
camera's status written by the fleet's own status writer to the test Redis, the other none."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from pydantic import SecretStr

from emostream.aggregator import create_app
from emostream.aggregator.state.store import EventStore
from emostream.cameras.model import CameraSpec
from emostream.cameras.status import StatusWriter
from emostream.cameras.topic import CameraLog
from emostream.fleet_options import FleetOptions
from emostream.local.servers import free_port
from emostream.runtime.lifecycle import ApiServer
from tests.integration.dashboard_browser import chromium, console_errors

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(180)]
READ = "read-key-0123456789"
ROWS_JS = """return [...document.querySelectorAll('[data-testid="camera"]')]
  .map(r => [...r.children].map(c => c.textContent));"""


async def test_the_overview_lists_cameras_with_their_status(
    kafka_settings, redis_settings, monkeypatch
):
    fleet = FleetOptions(cameras_topic=f"cameras-{uuid.uuid4().hex[:8]}", cameras_partitions=2)
    port = free_port()
    async with (
        EventStore(redis_settings) as store,
        CameraLog(kafka_settings, fleet) as cameras,
        StatusWriter(redis_settings, fleet) as writer,
    ):
        await cameras.put(CameraSpec(stream_id="door-1", source="rtsp://127.0.0.1:9/s"))
        await cameras.put(CameraSpec(stream_id="yard-2", source="rtsp://127.0.0.1:9/t"))
        status = {"stream_id": "door-1", "ingest": "host-42", "state": "error", "fps": 0.0}
        status |= {"reconnects": 3, "last_error": "ConnectionError: refused"}
        await writer.write([status | {"error_since": "2026-12-06T05:00:00+00:00"}])
        app = create_app(store, read_keys=[SecretStr(READ)])
        app.state.cameras = cameras
        async with ApiServer(app, "127.0.0.1", port):
            with chromium(monkeypatch, (1280, 800)) as driver:
                base = f"http://127.0.0.1:{port}"
                await asyncio.to_thread(driver.get, f"{base}/healthz")  # the origin, no script
                driver.execute_script("localStorage.setItem('emostream-key', arguments[0])", READ)
                await asyncio.to_thread(driver.get, f"{base}/dashboard")
                rows = []
                for _ in range(40):
                    rows = driver.execute_script(ROWS_JS)
                    if len(rows) == 2:
                        break
                    await asyncio.sleep(0.25)
                logs = driver.get_log("browser")
    # /healthz (visited only to set the key on the origin) has no favicon; the dashboard has.
    errors = [e for e in console_errors(logs) if "/favicon.ico" not in e["message"]]
    assert rows[0][:5] == ["door-1", "error", "0.0", "3", "host-42"], rows
    assert "ConnectionError: refused" in rows[0][5] and "since 2026-12-06" in rows[0][5]
    assert rows[1][:2] == ["yard-2", "no ingest"], rows
    assert errors == []
