"""What a web page in a browser can do to the API: XSS, keys in logs, cross-site WebSockets,
DNS rebinding. Against a real uvicorn server on loopback."""

from __future__ import annotations

import asyncio
import json
import logging
import re

import httpx
import pytest
import websockets
from pydantic import SecretStr

from emostream.aggregator import create_app
from emostream.aggregator.state.store import EventStore
from emostream.local.servers import free_port
from emostream.runtime.lifecycle import ApiServer
from emostream.schemas import EmotionEventV1
from tests.integration.test_aggregator_faults import event

KEY = "read-key-0123456789"


async def test_the_dashboard_runs_only_its_own_script_and_renders_text_as_text():
    app = create_app(_unstarted_store())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1"
    ) as client:
        pages = [await client.get(p) for p in ("/dashboard", "/dashboard/streams/lobby")]
        page = pages[0]
        refs = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        files = {ref: await client.get(ref) for ref in refs if ref.startswith("/dashboard/static/")}
        scripts = [f"/dashboard/static/js/{n}" for n in STATIC_SCRIPTS]
        code = {ref: (await client.get(ref)).text for ref in scripts}
        outside = await client.get("/dashboard/static/../api.py")
    csp = page.headers["content-security-policy"]
    assert all(p.headers["content-security-policy"] == csp for p in pages)
    assert "unsafe-inline" not in csp and "default-src 'none'" in csp
    assert "script-src 'self';" in csp and "connect-src 'self'" in csp
    assert "<script>" not in page.text and " style=" not in page.text  # nothing inline
    assert all(r.status_code == 200 for r in files.values()) and len(files) >= 4, files
    assert (
        files["/dashboard/static/js/main.js"].headers["content-type"].startswith("text/javascript")
    )
    assert outside.status_code == 404
    for ref, text in code.items():
        # Text only: no markup built from data, no inline handlers or style attributes.
        for banned in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert banned not in text, (ref, banned)
        assert 'setAttribute("style"' not in text and "api_key=" not in text, ref
        assert "http://" not in text and "https://" not in text, ref  # nothing from elsewhere


STATIC_SCRIPTS = [
    "api.js",
    "charts.js",
    "feeds.js",
    "live.js",
    "main.js",
    "model.js",
    "overview.js",
    "rules.js",
    "stream.js",
    "ui.js",
]


def _unstarted_store() -> EventStore:
    from emostream.settings import RedisOptions

    return EventStore(RedisOptions())


async def test_api_keys_never_reach_the_logs_and_browsers_authenticate_by_message(
    redis_settings, caplog
):
    port = free_port()
    caplog.set_level(logging.INFO, logger="uvicorn.error")
    async with EventStore(redis_settings) as store:
        app = create_app(store, read_keys=[SecretStr(KEY)])
        async with ApiServer(app, "127.0.0.1", port):
            base = f"ws://127.0.0.1:{port}/v1/live"
            async with websockets.connect(f"{base}?api_key={KEY}&stream_id=s") as ws:
                await asyncio.sleep(0.2)  # the server's subscribe shows nowhere: give it time
            async with websockets.connect(base) as ws:  # as the dashboard does
                await ws.send(json.dumps({"api_key": KEY}))
                await asyncio.sleep(0.3)  # as above: the key is checked, then the subscribe
                await store.add_events([EmotionEventV1.model_validate_json(event("s", 1))])
                assert json.loads(await asyncio.wait_for(ws.recv(), 5))["frame_seq"] == 1
            with pytest.raises(websockets.exceptions.ConnectionClosed) as info:
                async with websockets.connect(base) as ws:
                    await ws.send(json.dumps({"api_key": "wrong-key-0000000"}))
                    await ws.recv()
            assert info.value.rcvd.code == 4401
        await app.state.live_hub.stop()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "WebSocket /v1/live" in logged  # the handshakes were logged ...
    assert KEY not in logged  # ... without the key


async def test_cross_site_websockets_and_foreign_hosts_are_refused(redis_settings):
    port = free_port()
    async with EventStore(redis_settings) as store:
        app = create_app(store, local_hosts_only=True, bind_host="127.0.0.1")
        async with ApiServer(app, "127.0.0.1", port):
            base = f"ws://127.0.0.1:{port}/v1/live"
            for origin in ("http://evil.example", "null", f"http://localhost:{port}"):
                with pytest.raises(websockets.exceptions.InvalidStatus):
                    async with websockets.connect(base, origin=origin):
                        pass
            async with websockets.connect(base, origin=f"http://127.0.0.1:{port}"):
                pass  # the dashboard's own origin
            async with websockets.connect(base):
                pass  # no Origin: not a browser
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                rebound = await http.get("/v1/streams", headers={"Host": f"evil.example:{port}"})
                local = await http.get("/v1/streams", headers={"Host": f"localhost:{port}"})
                own = await http.get("/v1/streams")
        await app.state.live_hub.stop()
    assert rebound.status_code == 421 and "not this machine" in rebound.json()["detail"]
    assert local.status_code == 200 and own.status_code == 200
