"""The batched path on CUDA (nvJPEG, GPU detection and crops) agrees with it on the CPU."""

import cv2
import pytest
import torch

from emostream.frames import FrameMeta, encode_frame, frame_headers
from emostream.inference import engine_from_settings
from emostream.vision_options import ModelOptions
from emostream.worker.device_processing import DeviceFrameProcessor
from emostream.worker.processing import RawFrame

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_cuda_path_matches_cpu_path(astronaut_bgr):
    image = cv2.resize(astronaut_bgr, (640, 480))
    payload = encode_frame(image)
    frames = [
        RawFrame("f", 0, i, payload, frame_headers(FrameMeta("cam", i, 1000 + 66 * i)))
        for i in range(4)
    ] + [RawFrame("f", 0, 4, payload[:300], frame_headers(FrameMeta("cam", 4, 1300)))]
    results = []
    for device in ("cpu", "cuda"):
        engine = engine_from_settings(ModelOptions(device=device, dtype="fp32"))
        processor = DeviceFrameProcessor(engine, device=device)
        results.append(processor.process(frames))
        processor.close()
    cpu, gpu = results
    # A truncated JPEG may fail nvJPEG's batch (then it alone is rejected) or decode partly.
    assert {r.frame.offset for r in gpu.rejected} <= {4} and gpu.frames_ok >= 4
    cpu_events = [e for e in cpu.events if e.frame_seq < 4]
    gpu_events = [e for e in gpu.events if e.frame_seq < 4]
    assert len(gpu_events) == len(cpu_events) > 0
    for a, b in zip(cpu_events, gpu_events):
        assert abs(a.face.box.x - b.face.box.x) <= 2 and abs(a.face.box.w - b.face.box.w) <= 2
        assert a.emotion.label == b.emotion.label
