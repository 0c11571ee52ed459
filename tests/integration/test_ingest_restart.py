"""A restarted ingest starts its frame seq at 0 again: its new events are stored, not dropped as
replays of the previous run's (real ingest, worker and aggregator processes)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import cv2
import httpx
import pytest

from emostream.local.stack import services_env, worker_and_aggregator
from tests.waiting import wait_until

pytestmark = pytest.mark.slow
STREAM = "restart-cam"
FRAMES = 12


def run_ingest(env: dict[str, str], folder) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "emostream.cli.main",
            "ingest",
            "--source",
            str(folder),
            "--stream-id",
            STREAM,
            "--fps",
            "20",
        ],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]


async def test_restarted_ingest_events_are_stored(
    kafka_settings, redis_settings, tmp_path, astronaut_bgr
):
    # A still face (a folder of one photo): every frame has it, however the frames are paced.
    folder = tmp_path / "clip"
    folder.mkdir()
    for i in range(FRAMES):
        cv2.imwrite(str(folder / f"{i:02d}.jpg"), astronaut_bgr)
    tag = uuid.uuid4().hex[:8]
    kafka = kafka_settings.model_copy(update={"changes_topic": f"changes-{tag}"})
    env = services_env(kafka, redis_settings, f"restart-ingest-{tag}") | {
        "EMOSTREAM_MODEL__THREADS": "1",
        "EMOSTREAM_WORKER__TRACK_MIN_HITS": "1",
    }
    services = worker_and_aggregator(env, tmp_path)
    api = httpx.AsyncClient(base_url=f"http://127.0.0.1:{services.api_port}", timeout=5)

    async def events_total() -> int:
        r = await api.get("/v1/streams")
        return sum(s["events_total"] for s in r.json()["streams"] if s["stream_id"] == STREAM)

    async def seqs_stored_twice() -> list[int] | None:
        """Frame seqs with an event from each run (the seq restarts at 0 with each run)."""
        r = await api.get(f"/v1/streams/{STREAM}/events", params={"limit": 200})
        seqs = [e["frame_seq"] for e in r.json()["events"]] if r.status_code == 200 else []
        twice = [s for s in range(FRAMES) if seqs.count(s) >= 2]
        return twice if len(twice) >= FRAMES // 2 else None

    async with api:
        with services.running(log_lines=30):
            run_ingest(env, folder)
            await wait_until(events_total, 40, "events of the first ingest run")
            run_ingest(env, folder)  # seq 0, 1, ... again: a restart
            await wait_until(
                seqs_stored_twice,
                60,
                "events of the restarted ingest stored next to the first run's",
            )
