"""Frame messages on the frames topic: JPEG bytes keyed by stream id, metadata in headers."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import cv2
import numpy as np

from emostream.errors import InvalidFrame

H_STREAM = "emostream-stream-id"
H_SEQ = "emostream-seq"
H_CAPTURED = "emostream-captured-ms"
H_CONTENT = "content-type"
STREAM_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
MAX_SIDE_PX = 8192


@dataclass(frozen=True)
class FrameMeta:
    stream_id: str
    seq: int
    captured_ms: int


def validate_stream_id(stream_id: str) -> str:
    if not STREAM_ID_RE.match(stream_id):
        raise ValueError(
            f"invalid stream id {stream_id!r}: use 1-128 of letters, digits, '.', '_', ':', '-'"
        )
    return stream_id


def encode_frame(image_bgr: np.ndarray, jpeg_quality: int = 85) -> bytes:
    """BGR uint8 image -> JPEG bytes."""
    if image_bgr.dtype != np.uint8 or image_bgr.ndim not in (2, 3):
        raise ValueError(f"expected a uint8 HxW or HxWx3 image, got {image_bgr.dtype} {image_bgr.shape}")
    ok, buf = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def frame_headers(meta: FrameMeta) -> list[tuple[str, bytes]]:
    return [
        (H_STREAM, meta.stream_id.encode()),
        (H_SEQ, str(meta.seq).encode()),
        (H_CAPTURED, str(meta.captured_ms).encode()),
        (H_CONTENT, b"image/jpeg"),
    ]


def parse_headers(headers: list[tuple[str, bytes]] | tuple | None) -> FrameMeta:
    """Headers -> FrameMeta; raises InvalidFrame naming what is missing or malformed."""
    values = {k: v for k, v in (headers or [])}
    missing = [h for h in (H_STREAM, H_SEQ, H_CAPTURED) if h not in values]
    if missing:
        raise InvalidFrame(f"missing headers: {', '.join(missing)}", reason="missing_headers")
    try:
        stream_id = validate_stream_id(values[H_STREAM].decode())
        seq = int(values[H_SEQ].decode())
        captured_ms = int(values[H_CAPTURED].decode())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidFrame(f"malformed headers: {exc}", reason="bad_headers") from exc
    if seq < 0 or captured_ms < 0:
        raise InvalidFrame("negative sequence or capture time", reason="bad_headers")
    return FrameMeta(stream_id, seq, captured_ms)


def decode_frame(payload: bytes | None) -> np.ndarray:
    """JPEG (or PNG) bytes -> BGR image; raises InvalidFrame for empty or undecodable payloads."""
    if not payload:
        raise InvalidFrame("empty payload", reason="empty_payload")
    image = cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise InvalidFrame(f"payload of {len(payload)} bytes is not a decodable image", reason="corrupt_image")
    if max(image.shape[:2]) > MAX_SIDE_PX:
        raise InvalidFrame(f"image {image.shape[1]}x{image.shape[0]} exceeds {MAX_SIDE_PX} px", reason="too_large")
    return image


def now_ms() -> int:
    return int(time.time() * 1000)
