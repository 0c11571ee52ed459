"""Health endpoints: liveness follows loop progress, readiness follows the service's own check."""

import httpx
import pytest

from emostream import metrics  # noqa: F401 - registers the service metrics
from emostream.runtime.health import health_app, progress_check


def client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_liveness_fails_once_progress_is_older_than_the_timeout():
    clock = {"now": 100.0, "last": 100.0}
    live = progress_check(lambda: clock["last"], lambda: clock["now"], timeout_s=30)
    state = {"ready": False}
    async with client(health_app("worker", live, lambda: (state["ready"], {"partitions": 0}))) as c:
        r = await c.get("/livez")
        assert r.status_code == 200 and r.json()["status"] == "ok"
        clock["now"] = 131.0
        r = await c.get("/livez")
        assert r.status_code == 503 and r.json()["last_progress_s"] == pytest.approx(31.0)
        assert (await c.get("/readyz")).status_code == 503
        state["ready"] = True
        assert (await c.get("/readyz")).status_code == 200


async def test_metrics_are_prometheus_text():
    async with client(health_app("ingest", lambda: (True, {}), lambda: (True, {}))) as c:
        r = await c.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert "emostream_faces_total" in r.text
