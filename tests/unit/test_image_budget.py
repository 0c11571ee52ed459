"""A decode budget checked from the image header before any decode (issue 33, item 7): in the
worker's pre-decode check, so an over-budget frame is dead-lettered alone, and in ingest (413)."""

from __future__ import annotations

import time

import cv2
import httpx
import numpy as np
import pytest

from emostream.config import IngestHttpOptions, IngestOptions
from emostream.errors import InvalidFrame
from emostream.frames import (
    MAX_DECODE_BYTES,
    FrameMeta,
    check_payload,
    decode_frame,
    encode_frame,
    frame_headers,
)
from emostream.image_header import read_header
from emostream.inference import EmotionEngine
from emostream.ingest.http_app import create_ingest_app
from emostream.ingest.http_publish import FramePublisher
from emostream.models import untrained_model
from emostream.settings import KafkaOptions
from emostream.vision.detector import HaarDetector
from emostream.worker.processing import FrameProcessor, RawFrame
from tests.unit.test_ingest_http import FakeProducer


def png_declaring(width: int, height: int, dtype=np.uint16, channels: int = 3) -> bytes:
    """A real PNG's bytes with its IHDR changed to ``width`` x ``height``: a large image's
    header (and what decoding it would cost) without encoding one."""
    data = cv2.imencode(".png", np.zeros((4, 4, channels), dtype))[1].tobytes()
    return data[:16] + width.to_bytes(4, "big") + height.to_bytes(4, "big") + data[24:]


BIG_16_BIT = png_declaring(8000, 5000)  # 240 MB to decode: 1.3 s and 272 MB each, measured


@pytest.mark.parametrize(
    ("image", "params", "ext", "expected"),
    [
        (np.zeros((30, 40, 3), np.uint8), [], ".png", (40, 30, 3, 1)),
        (np.zeros((30, 40, 3), np.uint16), [], ".png", (40, 30, 3, 2)),
        (np.zeros((30, 40, 4), np.uint8), [], ".png", (40, 30, 4, 1)),
        (np.zeros((30, 40), np.uint8), [], ".png", (40, 30, 1, 1)),
        (np.zeros((30, 40, 3), np.uint8), [], ".jpg", (40, 30, 3, 1)),
        (np.zeros((30, 40), np.uint8), [], ".jpg", (40, 30, 1, 1)),
        (
            np.zeros((30, 40, 3), np.uint8),
            [cv2.IMWRITE_JPEG_PROGRESSIVE, 1],
            ".jpg",
            (40, 30, 3, 2),
        ),
    ],
)
def test_the_header_says_pixels_channels_and_sample_size(image, params, ext, expected):
    header = read_header(cv2.imencode(ext, image, params)[1].tobytes())
    assert header is not None
    assert (header.width, header.height, header.channels, header.sample_bytes) == expected


def test_an_over_budget_image_is_refused_from_its_header():
    t0 = time.perf_counter()
    with pytest.raises(InvalidFrame, match="decode budget") as info:
        check_payload(BIG_16_BIT)
    assert time.perf_counter() - t0 < 0.05  # the header only
    assert info.value.reason == "too_large" and "8000x5000" in str(info.value)
    with pytest.raises(InvalidFrame, match="decode budget"):
        check_payload(png_declaring(8000, 5000, np.uint8))  # 8-bit: 120 MB, still over
    with pytest.raises(InvalidFrame, match="decode budget"):
        check_payload(png_declaring(3840, 2160))  # 16-bit 4K: 50 MB
    check_payload(png_declaring(3840, 2160, np.uint8))  # 8-bit 4K: 25 MB, accepted


LARGEST_ACCEPTED = [  # each exactly at the budget
    (np.zeros((2048, 4096, 3), np.uint8), ".png", []),
    (np.zeros((2048, 4096, 3), np.uint8), ".jpg", []),
    (np.zeros((2048, 2048, 3), np.uint16), ".png", []),
    (np.zeros((2048, 2048, 3), np.uint8), ".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
]


@pytest.mark.parametrize(("image", "ext", "params"), LARGEST_ACCEPTED)
def test_the_largest_accepted_images_decode(image, ext, params):
    image[::7, ::5] = 200
    payload = cv2.imencode(ext, image, params)[1].tobytes()
    assert read_header(payload).decode_bytes == MAX_DECODE_BYTES  # type: ignore[union-attr]
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        decoded = decode_frame(payload)
        times.append(time.perf_counter() - t0)
    assert decoded.shape == (*image.shape[:2], 3)
    print(f"{ext} {image.shape} {image.dtype} {params}: decoded in {min(times):.3f} s (best of 3)")


def test_the_worker_dead_letters_an_over_budget_frame_alone(astronaut_bgr):
    processor = FrameProcessor(HaarDetector(), EmotionEngine(untrained_model(), device="cpu"))
    frames = [
        RawFrame("frames", 0, 0, BIG_16_BIT, frame_headers(FrameMeta("cam-big", 1, 1))),
        RawFrame(
            "frames", 0, 1, encode_frame(astronaut_bgr), frame_headers(FrameMeta("cam-ok", 1, 1))
        ),
    ]
    result = processor.process(frames)
    assert [(r.stream_id, r.reason) for r in result.rejected] == [("cam-big", "too_large")]
    assert "decode budget" in result.rejected[0].detail
    assert {e.stream_id for e in result.events} == {"cam-ok"}


async def test_ingest_refuses_an_over_budget_frame_with_413():
    opts = IngestOptions(http=IngestHttpOptions(port=8001))
    publisher = FramePublisher(KafkaOptions(), 8, 1, FakeProducer())
    await publisher.start()
    transport = httpx.ASGITransport(app=create_ingest_app(publisher, opts))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        r = await client.post("/v1/streams/cam-big/frames", content=BIG_16_BIT)
    assert r.status_code == 413 and "decode budget" in r.json()["detail"]
