"""Cameras as a fleet (issue 35), with real processes: a broker, Redis, the aggregator (the
registry API) and three fleet ingests; frames are read off the frames topic."""

from __future__ import annotations

import os
import re
import signal
import time
import uuid

import httpx
import pytest

from emostream.local.servers import free_port
from tests.integration.aggregator_process import aggregator_process
from tests.integration.fleet_helpers import FrameWatch, fleet_env, fleet_ingest, image_folder
from tests.integration.fleet_helpers import wait_for as until
from tests.integration.worker_run import running_worker

pytestmark = pytest.mark.asyncio
ADMIN = {"X-API-Key": "fleet-admin-key-0123"}
READ = {"X-API-Key": "fleet-read-key-01234"}
CAMERAS = [f"cam-{i:02d}" for i in range(12)]


def _all_fresh(watch: FrameWatch, after: float) -> bool:
    return all(watch.since(c, after) for c in CAMERAS if c in _alive)


_alive: set[str] = set()


async def _register(api: httpx.AsyncClient) -> None:
    for bad, why in (("ftp://127.0.0.1/x.mp4", "scheme"), ("/etc/passwd", "must lie under")):
        r = await api.post("/v1/cameras", json={"stream_id": "x", "source": bad}, headers=ADMIN)
        assert r.status_code == 422 and why in r.text, r.text
    r = await api.post("/v1/cameras", json={"stream_id": "x", "source": "clips"})
    assert r.status_code == 401
    for cam in CAMERAS:
        r = await api.post(
            "/v1/cameras",
            json={"stream_id": cam, "source": "clips", "fps": 5, "live": True},
            headers=ADMIN,
        )
        assert r.status_code == 201, r.text
    r = await api.post(
        "/v1/cameras", json={"stream_id": "bad", "source": "missing/no.mp4"}, headers=ADMIN
    )
    assert r.status_code == 201, r.text
    r = await api.post(
        "/v1/cameras", json={"stream_id": "cam-00", "source": "clips"}, headers=ADMIN
    )
    assert r.status_code == 409
    r = await api.post("/v1/cameras", json={"stream_id": "y", "source": "clips"}, headers=READ)
    assert r.status_code == 403


def _running(ingests: list) -> int:
    """Cameras the ingests' /metrics say they run (``emostream_fleet_cameras``, per ingest)."""
    found = 0
    for proc in ingests:
        text = httpx.get(f"http://127.0.0.1:{proc.port}/metrics", timeout=5).text
        found += sum(
            int(float(n))
            for n in re.findall(r'emostream_fleet_cameras\{state="running"\} (\S+)', text)
        )
    return found


async def _bad_source_reported(api: httpx.AsyncClient) -> dict | None:
    status = (await api.get("/v1/cameras/bad", headers=READ)).json()["status"]
    return status if status and status.get("last_error") else None


async def _events_everywhere(api: httpx.AsyncClient) -> bool:
    for cam in sorted(_alive):
        r = await api.get(f"/v1/streams/{cam}/events", params={"limit": 1}, headers=READ)
        if r.status_code != 200 or not r.json()["events"]:
            return False
    return True


@pytest.mark.timeout(420)
async def test_fleet_runs_moves_and_changes_cameras(
    kafka_settings, redis_settings, tmp_path, group_id
):
    tag = uuid.uuid4().hex[:8]
    image_folder(tmp_path / "clips")
    env = fleet_env(kafka_settings, redis_settings, tag, tmp_path)
    port = free_port()
    aggregator = aggregator_process(
        kafka_settings,
        redis_settings,
        port,
        tmp_path,
        **{k: v for k, v in env.items() if k.startswith("EMOSTREAM_FLEET__")},
        EMOSTREAM_API__ADMIN_KEYS=f'["{ADMIN["X-API-Key"]}"]',
        EMOSTREAM_API__READ_KEYS=f'["{READ["X-API-Key"]}"]',
    )
    aggregator.start(port)
    ingests = []
    api = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10)
    try:
        ingests = [fleet_ingest(env, tmp_path / f"ingest{i}.log") for i in range(3)]
        async with FrameWatch(kafka_settings.bootstrap_servers, kafka_settings.frames_topic) as w:
            _alive.update(CAMERAS)
            await _register(api)
            start = time.time()
            await until(lambda: _all_fresh(w, start), 60, "frames of all 12 cameras")
            # A worker turns every camera's frames into events the API serves (live frames: the
            # backlog older than 2 s is dropped, not processed).
            async with running_worker(kafka_settings, group_id("worker"), max_batch_frames=8):
                _, took = await until(
                    lambda: _events_everywhere(api), 120, "events of every camera"
                )
            print(f"every camera had events {took:.1f} s after the worker started")
            await until(lambda: _running(ingests) == 12, 10, "the gauges")  # no stream labels
            status, _ = await until(lambda: _bad_source_reported(api), 30, "the bad source's error")
            assert "missing" in status["last_error"] or "no.mp4" in status["last_error"]
            t = time.time()
            await until(lambda: _all_fresh(w, t), 10, "the others go on beside the bad one")

            # SIGKILL the ingest that runs cam-00: its cameras move within 20 s.
            listed = (await api.get("/v1/cameras", headers=ADMIN)).json()["cameras"]
            good = [c["status"] for c in listed if c["stream_id"] in CAMERAS]
            assert [(st["state"], st["last_error"]) for st in good] == [("running", None)] * 12
            owner = next(c["status"]["ingest"] for c in listed if c["stream_id"] == "cam-00")
            victim = next(p for p in ingests if owner.endswith(f"-{p.pid}"))
            os.kill(victim.pid, signal.SIGKILL)
            killed_at = time.time()
            _, took = await until(lambda: _all_fresh(w, killed_at + 1), 20, "cameras moved")
            print(f"every camera produced again {took + 1:.1f} s after the SIGKILL")

            # PATCH fps 5 -> 1: within 5 s the camera publishes at about 1 frame/s.
            r = await api.patch("/v1/cameras/cam-01", json={"fps": 1}, headers=ADMIN)
            assert r.status_code == 200 and r.json()["fps"] == 1
            patched_at = time.time()
            # DELETE cam-02: no frames 5 s later.
            assert (await api.delete("/v1/cameras/cam-02", headers=ADMIN)).status_code == 204
            deleted_at = time.time()
            _alive.discard("cam-02")
            await until(lambda: time.time() > patched_at + 9, 15, "time")
            slow = w.since("cam-01", patched_at + 5, patched_at + 9)
            assert 1 <= len(slow) <= 6, slow
            assert w.since("cam-02", deleted_at + 5) == []
            assert (await api.get("/v1/cameras/cam-02", headers=READ)).status_code == 404
            await until(lambda: _all_fresh(w, time.time() - 2), 10, "the others still run")
            overlap = max(w.longest_overlap(cam) for cam in CAMERAS)
            print(f"longest time two runs of one camera published together: {overlap:.1f} s")
            assert overlap <= 10

    finally:
        await api.aclose()
        for proc in ingests:
            proc.stop()
        aggregator.stop()
