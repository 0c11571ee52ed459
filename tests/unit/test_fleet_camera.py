"""A fleet camera on its own: pace across the loops of a folder, errors kept and retried."""

from __future__ import annotations

import asyncio

import cv2
import numpy as np
import pytest

from emostream.cameras.model import CameraSpec
from emostream.fleet_options import FleetOptions
from emostream.frames import parse_headers
from emostream.ingest.camera import Camera

pytestmark = pytest.mark.asyncio


class Sent:
    """Stands in for the Kafka producer: records each send and acknowledges it at once."""

    def __init__(self) -> None:
        self.records: list[tuple[str, bytes, list]] = []

    async def send(self, topic, value, key=None, headers=None):
        self.records.append((topic, key, headers))
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut


def _folder(path, n: int) -> None:
    path.mkdir()
    for i in range(n):
        cv2.imwrite(str(path / f"{i}.jpg"), np.full((48, 64, 3), 20 * i, np.uint8))


async def _run(camera: Camera, seconds: float) -> None:
    camera.start()
    await asyncio.sleep(seconds)
    await camera.stop()


async def test_a_looping_folder_keeps_the_pace_across_its_loops(tmp_path):
    _folder(tmp_path / "clip", 2)  # a loop every 2 frames: a restart of the pace would show
    sent = Sent()
    spec = CameraSpec(stream_id="cam", source="clip", fps=10)
    camera = Camera(spec, sent, "frames", FleetOptions(source_root=str(tmp_path)))
    await _run(camera, 3.0)
    assert 27 <= len(sent.records) <= 32, len(sent.records)  # before: 59 (pace reset a loop)
    metas = [parse_headers(h) for _, _, h in sent.records]
    assert [m.seq for m in metas] == list(range(len(metas)))
    assert {m.run_id for m in metas} == {camera.run_id} and not metas[0].live


async def test_a_patch_of_fps_applies_to_the_running_camera(tmp_path):
    _folder(tmp_path / "clip", 3)
    sent = Sent()
    camera = Camera(
        CameraSpec(stream_id="cam", source="clip", fps=20),
        sent,
        "frames",
        FleetOptions(source_root=str(tmp_path)),
    )
    camera.start()
    await asyncio.sleep(1.0)
    camera.spec = camera.spec.model_copy(update={"fps": 2})
    await asyncio.sleep(0.3)
    before = len(sent.records)
    await asyncio.sleep(2.0)
    await camera.stop()
    assert len(sent.records) - before <= 6


async def test_a_missing_source_is_reported_and_retried_with_back_off(tmp_path):
    fleet = FleetOptions(source_root=str(tmp_path), backoff_min_s=0.1, backoff_max_s=0.4)
    camera = Camera(CameraSpec(stream_id="cam", source="gone.mp4"), Sent(), "frames", fleet)
    await _run(camera, 1.5)
    status = camera.status("me")
    assert status["state"] == "stopped" and status["connected"] is False
    assert "gone.mp4" in status["last_error"] and status["error_since"]
    assert 2 <= status["reconnects"] <= 6  # 0.1, 0.2, 0.4, 0.4 ... not a busy loop


async def test_a_source_outside_the_root_never_opens(tmp_path):
    fleet = FleetOptions(source_root=str(tmp_path / "root"), backoff_min_s=0.1)
    camera = Camera(CameraSpec(stream_id="cam", source="../x"), Sent(), "frames", fleet)
    await _run(camera, 0.3)
    assert "must lie under" in camera.last_error


async def test_a_live_flagged_folder_loops_without_a_reconnect(tmp_path):
    _folder(tmp_path / "clip", 2)  # "live" sets the frames' freshness policy, not the looping
    sent = Sent()
    spec = CameraSpec(stream_id="cam", source="clip", fps=10, live=True)
    camera = Camera(spec, sent, "frames", FleetOptions(source_root=str(tmp_path)))
    await _run(camera, 2.0)
    assert camera.last_error is None and camera.reconnects == 0  # before: "the stream ended"
    assert len(sent.records) >= 17 and parse_headers(sent.records[0][2]).live
