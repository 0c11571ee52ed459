"""Frame messages on the frames topic: JPEG bytes keyed by stream id, metadata in headers."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import cv2
import numpy as np

from emostream.errors import InvalidFrame
from emostream.image_header import _SOF, JPEG_MAGIC, PNG_MAGIC, read_header  # noqa: F401
from emostream.schemas import STREAM_ID_PATTERN

H_STREAM = "emostream-stream-id"
H_SEQ = "emostream-seq"
H_CAPTURED = "emostream-captured-ms"
H_CONTENT = "content-type"
H_LIVE = "emostream-live"
H_RUN = "emostream-run"  # the producer's run: seq restarts at 0 with a new run, the run id differs
RUN_ID_RE = re.compile(rb"[A-Za-z0-9._:-]{1,64}")
STREAM_ID_RE = re.compile(STREAM_ID_PATTERN)  # use fullmatch: "$" also matches before a "\n"
_DIGITS_RE = re.compile(rb"[0-9]{1,19}")  # ASCII only: int() would also take "١٢", " 1_0 "
MAX_SEQ = 2**63 - 1
MAX_CAPTURED_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last datetime Python holds
MAX_SIDE_PX = 8192
MAX_PIXELS = 40_000_000
MAX_FRAME_BYTES = 8 * 1024 * 1024
# Decode budget: bytes a decoder may fill (ImageHeader.decode_bytes); 4K UHD (3840x2160) 8-bit
# colour fits, an 8000x5000 16-bit PNG (240 MB, 1.3 s to decode) is refused before decoding.
MAX_DECODE_BYTES = 24 * 1024 * 1024


@dataclass(frozen=True)
class FrameMeta:
    stream_id: str
    seq: int
    captured_ms: int
    live: bool = False  # live cameras: stale frames may be dropped; files: process everything
    run_id: str = ""  # unique per producer run (ingest start); "" when the producer sets none


def validate_stream_id(stream_id: str) -> str:
    if not STREAM_ID_RE.fullmatch(stream_id):
        raise ValueError(
            f"invalid stream id {stream_id!r}: use 1-128 of letters, digits, '.', '_', ':', '-'"
        )
    return stream_id


def encode_frame(image_bgr: np.ndarray, jpeg_quality: int = 85) -> bytes:
    """BGR uint8 image -> JPEG bytes."""
    if image_bgr.dtype != np.uint8 or image_bgr.ndim not in (2, 3):
        raise ValueError(
            f"expected a uint8 HxW or HxWx3 image, got {image_bgr.dtype} {image_bgr.shape}"
        )
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
        (H_LIVE, b"1" if meta.live else b"0"),
    ] + ([(H_RUN, meta.run_id.encode())] if meta.run_id else [])


def _header_int(values: dict, name: str, maximum: int) -> int:
    raw = values[name]
    if not isinstance(raw, bytes) or not _DIGITS_RE.fullmatch(raw) or int(raw) > maximum:
        shown = raw[:32] if isinstance(raw, bytes) else raw
        raise InvalidFrame(
            f"malformed headers: {name} must be an integer 0..{maximum}, got {shown!r}",
            reason="bad_headers",
        )
    return int(raw)


def parse_headers(headers: list[tuple[str, bytes]] | tuple | None) -> FrameMeta:
    """Headers -> FrameMeta; raises InvalidFrame naming what is missing or malformed.

    Numbers are ASCII digits within range (a capture time past year 9999 would fail later, in
    datetime, and crash the batch instead of dead-lettering one frame); Kafka allows null
    header values, which are malformed here.
    """
    values = {k: v for k, v in (headers or [])}
    missing = [h for h in (H_STREAM, H_SEQ, H_CAPTURED) if h not in values]
    if missing:
        raise InvalidFrame(f"missing headers: {', '.join(missing)}", reason="missing_headers")
    raw_id = values[H_STREAM]
    try:
        if not isinstance(raw_id, bytes):
            raise ValueError(f"{H_STREAM} is {raw_id!r}")
        stream_id = validate_stream_id(raw_id.decode())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidFrame(f"malformed headers: {exc}", reason="bad_headers") from exc
    seq = _header_int(values, H_SEQ, MAX_SEQ)
    captured_ms = _header_int(values, H_CAPTURED, MAX_CAPTURED_MS)
    run = values.get(H_RUN, b"")
    if H_RUN in values and (not isinstance(run, bytes) or not RUN_ID_RE.fullmatch(run)):
        shown = run[:32] if isinstance(run, bytes) else run
        raise InvalidFrame(
            f"malformed headers: {H_RUN} must be 1-64 of letters, digits, '.', '_', "
            f"':', '-', got {shown!r}",
            reason="bad_headers",
        )
    return FrameMeta(
        stream_id, seq, captured_ms, values.get(H_LIVE) == b"1", run.decode() if run else ""
    )


def declared_size(payload: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG SOF or PNG IHDR header without decoding; None if not found."""
    header = read_header(payload)
    return None if header is None else (header.width, header.height)


def check_payload(
    payload: bytes | None,
    max_frame_bytes: int = MAX_FRAME_BYTES,
    max_decode_bytes: int = MAX_DECODE_BYTES,
) -> bytes:
    """Every check made before a frame is decoded, on the CPU or on a GPU (nvJPEG).

    Raises InvalidFrame for empty or oversized payloads, for formats other than JPEG and PNG
    (``unsupported_format``: only their header is read), and for declared dimensions over the
    limits or a decode over ``max_decode_bytes`` (decompression bombs, slow decodes), all from
    the header alone.

    Returns:
        The payload, now known to be non-empty bytes.
    """
    if not payload:
        raise InvalidFrame("empty payload", reason="empty_payload")
    if len(payload) > max_frame_bytes:
        raise InvalidFrame(
            f"payload of {len(payload)} bytes exceeds {max_frame_bytes}", reason="too_large"
        )
    if not payload.startswith((JPEG_MAGIC, PNG_MAGIC)):
        # cv2.imdecode also decodes WebP, TIFF, GIF, ...: formats whose declared size is not
        # checked below, so a small file could still expand to gigabytes (decompression bomb).
        raise InvalidFrame(
            f"payload starting {payload[:8]!r} is not JPEG or PNG", reason="unsupported_format"
        )
    header = read_header(payload)
    if header is None:
        raise InvalidFrame(
            "no image size before the image data (JPEG SOF or PNG IHDR)", reason="corrupt_image"
        )
    w, h = header.width, header.height
    if w == 0 or h == 0 or max(w, h) > MAX_SIDE_PX or w * h > MAX_PIXELS:
        raise InvalidFrame(
            f"declared image size {w}x{h} is outside the limits "
            f"({MAX_SIDE_PX} px a side, {MAX_PIXELS} pixels)",
            reason="too_large",
        )
    if header.decode_bytes > max_decode_bytes:
        raise InvalidFrame(
            f"declared image {header.describe()} needs {header.decode_bytes} bytes to decode, "
            f"over the decode budget of {max_decode_bytes} (4K UHD 8-bit colour fits)",
            reason="too_large",
        )
    return payload


def decode_frame(payload: bytes | None, max_frame_bytes: int = MAX_FRAME_BYTES) -> np.ndarray:
    """JPEG (or PNG) bytes -> BGR image.

    Raises InvalidFrame for empty, oversized or undecodable payloads, for other formats
    (``unsupported_format``: only JPEG and PNG have their declared size checked), and for images
    whose declared dimensions exceed the limits (checked before decoding: decompression bombs).
    """
    payload = check_payload(payload, max_frame_bytes)
    image = cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise InvalidFrame(
            f"payload of {len(payload)} bytes is not a decodable image", reason="corrupt_image"
        )
    if max(image.shape[:2]) > MAX_SIDE_PX:
        raise InvalidFrame(
            f"image {image.shape[1]}x{image.shape[0]} exceeds {MAX_SIDE_PX} px", reason="too_large"
        )
    return image


def now_ms() -> int:
    return int(time.time() * 1000)
