"""The camera registry routes without a broker: scopes, source rules, 404/409/503 (a registry
that writes to a dict stands in for the cameras topic)."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from pydantic import SecretStr

from emostream.aggregator.api import create_app
from emostream.aggregator.state.store import EventStore
from emostream.cameras.model import CameraSpec
from emostream.fleet_options import FleetOptions
from emostream.settings import RedisOptions

pytestmark = pytest.mark.asyncio
ADMIN, READ = {"X-API-Key": "admin-key-0123456"}, {"X-API-Key": "read-key-01234567"}


class DictRegistry:
    def __init__(self, fleet: FleetOptions) -> None:
        self.fleet = fleet
        self.cameras: dict[str, CameraSpec] = {}
        self.ready = asyncio.Event()
        self.ready.set()

    async def put(self, spec: CameraSpec) -> None:
        self.cameras[spec.stream_id] = spec

    async def delete(self, stream_id: str) -> None:
        self.cameras.pop(stream_id, None)


@pytest.fixture
def registry(tmp_path) -> DictRegistry:
    return DictRegistry(FleetOptions(source_root=str(tmp_path), max_cameras=2))


def client(registry) -> httpx.AsyncClient:
    app = create_app(
        EventStore(RedisOptions()),
        read_keys=[SecretStr(READ["X-API-Key"])],
        admin_keys=[SecretStr(ADMIN["X-API-Key"])],
    )
    if registry is not None:
        app.state.cameras = registry
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1")


async def test_admin_adds_changes_and_removes_cameras(registry):
    cam = {"stream_id": "door-1", "source": "rtsp://u:p@127.0.0.1/s", "fps": 2}
    async with client(registry) as c:
        assert (await c.post("/v1/cameras", json=cam)).status_code == 401
        assert (await c.post("/v1/cameras", json=cam, headers=READ)).status_code == 403
        r = await c.post("/v1/cameras", json=cam, headers=ADMIN)
        assert r.status_code == 201 and r.json()["fps"] == 2
        assert (await c.post("/v1/cameras", json=cam, headers=ADMIN)).status_code == 409
        r = await c.patch("/v1/cameras/door-1", json={"fps": 7, "resize": 640}, headers=ADMIN)
        assert r.status_code == 200 and registry.cameras["door-1"].fps == 7
        assert registry.cameras["door-1"].source == cam["source"]
        r = await c.patch("/v1/cameras/door-1", json={"fps": 0}, headers=ADMIN)
        assert r.status_code == 422 and registry.cameras["door-1"].fps == 7
        assert (await c.patch("/v1/cameras/nope", json={}, headers=ADMIN)).status_code == 404
        assert (await c.delete("/v1/cameras/door-1", headers=READ)).status_code == 403
        assert (await c.delete("/v1/cameras/door-1", headers=ADMIN)).status_code == 204
        assert (await c.delete("/v1/cameras/door-1", headers=ADMIN)).status_code == 404
        assert registry.cameras == {}


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ("ftp://127.0.0.1/a", "not allowed"),
        ("/etc/passwd", "must lie under"),
        ("0", "webcam"),
        ("", "at least 1 character"),
    ],
)
async def test_a_source_not_allowed_is_422_with_the_reason(registry, source, why):
    async with client(registry) as c:
        r = await c.post("/v1/cameras", json={"stream_id": "c", "source": source}, headers=ADMIN)
        patch = await c.patch("/v1/cameras/c", json={"source": source}, headers=ADMIN)
    assert r.status_code == 422 and why in r.text
    assert patch.status_code in (404, 422) and registry.cameras == {}


async def test_limits_and_an_unready_or_absent_registry(registry):
    async with client(registry) as c:
        for i in range(2):
            body = {"stream_id": f"c{i}", "source": "clips/a.mp4"}
            assert (await c.post("/v1/cameras", json=body, headers=ADMIN)).status_code == 201
        body = {"stream_id": "c9", "source": "clips/a.mp4"}
        assert (await c.post("/v1/cameras", json=body, headers=ADMIN)).status_code == 409
        bad_id = {"stream_id": "a b", "source": "clips/a.mp4"}
        assert (await c.post("/v1/cameras", json=bad_id, headers=ADMIN)).status_code == 422
        registry.ready.clear()
        r = await c.get("/v1/cameras/c0", headers=READ)
        assert r.status_code == 503 and r.headers["retry-after"] == "2"
    async with client(None) as c:
        assert (await c.get("/v1/cameras", headers=READ)).json() == {"cameras": [], "count": 0}
        assert (await c.get("/v1/cameras/c0", headers=READ)).status_code == 404
