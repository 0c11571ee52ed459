import cv2
import numpy as np
import pytest

from emostream.errors import ConfigError
from emostream.ingest.sources import (
    classify_source,
    default_stream_id,
    fit_width,
    open_source,
    sample_frames,
)


def test_sample_clip_is_deterministic_and_moves():
    a = list(sample_frames(6))
    b = list(sample_frames(6))
    assert len(a) == 6 and all(f.shape == (360, 640, 3) and f.dtype == np.uint8 for f in a)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], a[3])


def test_classify_sources(tmp_path):
    assert classify_source("sample") == "sample"
    assert classify_source("0") == "webcam"
    assert classify_source("rtsp://cam.local/stream") == "url"
    assert classify_source("https://x/y.mjpg") == "url"
    assert classify_source(str(tmp_path)) == "folder"
    with pytest.raises(ConfigError, match="not 'sample'"):
        classify_source(str(tmp_path / "missing.mp4"))


def test_default_stream_ids(tmp_path):
    assert default_stream_id("sample") == "sample-astronaut"
    assert default_stream_id("2") == "webcam-2"
    assert default_stream_id("rtsp://user@cam.local:554/live") == "user-cam.local-554-live"
    (tmp_path / "front door.mp4").write_bytes(b"x")
    assert default_stream_id(str(tmp_path / "front door.mp4")) == "front-door"


def test_image_folder_in_name_order_skipping_unreadable(tmp_path):
    for i in (2, 0, 1):
        cv2.imwrite(str(tmp_path / f"f{i}.png"), np.full((20, 30, 3), i * 50, np.uint8))
    (tmp_path / "f3.jpg").write_bytes(b"broken")
    (tmp_path / "notes.txt").write_text("ignored")
    frames = list(open_source(str(tmp_path)))
    assert [int(f[0, 0, 0]) for f in frames] == [0, 50, 100]


def test_empty_folder_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="no images"):
        list(open_source(str(tmp_path)))


def test_video_file_frames(tmp_path):
    path = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (64, 48))
    for i in range(5):
        writer.write(np.full((48, 64, 3), i * 40, np.uint8))
    writer.release()
    frames = list(open_source(str(path)))
    assert len(frames) == 5 and frames[0].shape == (48, 64, 3)


def test_not_a_video_is_an_error(tmp_path):
    path = tmp_path / "v.mp4"
    path.write_bytes(b"not a video")
    with pytest.raises(ConfigError, match="cannot open"):
        list(open_source(str(path)))


def test_fit_width_keeps_aspect():
    out = fit_width(np.zeros((1080, 1920, 3), np.uint8), 1280)
    assert out.shape == (720, 1280, 3)
    small = np.zeros((10, 20, 3), np.uint8)
    assert fit_width(small, 1280) is small
