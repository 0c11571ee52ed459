"""The batched torch path: OpenCV's pixel operations reproduced, bad frames rejected alone."""

import cv2
import numpy as np
import torch

from emostream.frames import FrameMeta, encode_frame, frame_headers
from emostream.inference import engine_from_settings
from emostream.vision.device_ops import area_resize, bgr_to_gray, crop_resize
from emostream.vision_options import ModelOptions
from emostream.worker.device_processing import DeviceFrameProcessor
from emostream.worker.processing import RawFrame


def _frame(astronaut_bgr) -> np.ndarray:
    return cv2.resize(astronaut_bgr, (640, 480))


def test_pixel_ops_match_opencv(astronaut_bgr):
    image = _frame(astronaut_bgr)
    batch = torch.from_numpy(image).permute(2, 0, 1)[None]
    small = area_resize(batch, 360, 480)[0].permute(1, 2, 0).numpy()
    want = cv2.resize(image, (480, 360), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(small, want)
    gray = bgr_to_gray(batch)
    np.testing.assert_array_equal(gray[0, 0].numpy(), cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
    boxes = [(100, 50, 210, 160), (0, 0, 64, 64), (590, 400, 640, 480)]
    crops = crop_resize(gray, torch.zeros(3, dtype=torch.long), torch.tensor(boxes), 48)
    ref_gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    for crop, (x1, y1, x2, y2) in zip(crops, boxes):
        want = cv2.resize(ref_gray[y1:y2, x1:x2], (48, 48), interpolation=cv2.INTER_LINEAR)
        assert np.abs(crop[0].numpy() - want).max() <= 1  # OpenCV's fixed-point rounding


def _record(payload, seq, stream="cam-1"):
    meta = FrameMeta(stream, seq, 1_000 + seq * 66)
    return RawFrame("frames", 0, seq, payload, frame_headers(meta))


def test_bad_frames_are_rejected_alone(astronaut_bgr):
    engine = engine_from_settings(ModelOptions(device="cpu", dtype="fp32"))
    processor = DeviceFrameProcessor(engine, device="cpu")
    good = encode_frame(_frame(astronaut_bgr))
    frames = [
        _record(good, 0),
        _record(good[:200], 1),
        _record(b"GIF89a....", 2),
        RawFrame("frames", 0, 3, good, [("nothing", b"")]),
        _record(good, 4),
    ]
    result = processor.process(frames)
    processor.close()
    assert result.frames_ok == 2 and len(result.events) == 2
    assert sorted(r.frame.offset for r in result.rejected) == [1, 2, 3]
    assert {e.frame_seq for e in result.events} == {0, 4}
    assert len({e.face.track_id for e in result.events}) == 1  # tracked across the batch
