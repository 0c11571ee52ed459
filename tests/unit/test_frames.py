import cv2
import numpy as np
import pytest

from emostream.errors import InvalidFrame
from emostream.frames import (
    H_SEQ,
    FrameMeta,
    decode_frame,
    encode_frame,
    frame_headers,
    parse_headers,
    validate_stream_id,
)


def test_jpeg_round_trip(astronaut_bgr):
    payload = encode_frame(astronaut_bgr, jpeg_quality=90)
    assert payload[:2] == b"\xff\xd8"
    back = decode_frame(payload)
    assert back.shape == astronaut_bgr.shape
    assert np.abs(back.astype(int) - astronaut_bgr.astype(int)).mean() < 4


def test_headers_round_trip():
    meta = FrameMeta("cam-1", 42, 1_700_000_000_000)
    assert parse_headers(frame_headers(meta)) == meta


@pytest.mark.parametrize(
    ("payload", "reason"),
    [(b"", "empty_payload"), (None, "empty_payload"), (b"\xff\xd8garbage" * 10, "corrupt_image")],
)
def test_bad_payloads(payload, reason):
    with pytest.raises(InvalidFrame) as info:
        decode_frame(payload)
    assert info.value.reason == reason


def test_truncated_jpeg_is_invalid(astronaut_bgr):
    payload = encode_frame(astronaut_bgr)
    with pytest.raises(InvalidFrame):
        decode_frame(payload[:200])


def test_missing_and_malformed_headers():
    headers = frame_headers(FrameMeta("cam", 1, 5))
    with pytest.raises(InvalidFrame) as info:
        parse_headers([h for h in headers if h[0] != H_SEQ])
    assert info.value.reason == "missing_headers"
    assert H_SEQ in str(info.value)
    bad = [(k, b"x" if k == H_SEQ else v) for k, v in headers]
    with pytest.raises(InvalidFrame) as info:
        parse_headers(bad)
    assert info.value.reason == "bad_headers"
    with pytest.raises(InvalidFrame):
        parse_headers(None)


@pytest.mark.parametrize("bad", ["", "a b", "../x", "x" * 200, "-lead"])
def test_stream_id_validation(bad):
    with pytest.raises(ValueError):
        validate_stream_id(bad)


def _with_declared_size(jpeg: bytes, w: int, h: int) -> bytes:
    from emostream.frames import _SOF

    i = 2
    while True:
        marker, length = jpeg[i + 1], int.from_bytes(jpeg[i + 2 : i + 4], "big")
        if marker in _SOF:
            return jpeg[: i + 5] + h.to_bytes(2, "big") + w.to_bytes(2, "big") + jpeg[i + 9 :]
        i += 2 + length


def test_declared_size_read_without_decoding(astronaut_bgr):
    from emostream.frames import declared_size

    assert declared_size(encode_frame(astronaut_bgr)) == (512, 512)
    ok, png = cv2.imencode(".png", astronaut_bgr[:100, :200])
    assert declared_size(png.tobytes()) == (200, 100)
    assert declared_size(b"nothing") is None


def test_decompression_bomb_rejected_before_decoding(astronaut_bgr):
    bomb = _with_declared_size(encode_frame(astronaut_bgr), 60000, 60000)
    with pytest.raises(InvalidFrame, match="declared image size 60000x60000") as info:
        decode_frame(bomb)
    assert info.value.reason == "too_large"


def test_oversized_payload_rejected():
    with pytest.raises(InvalidFrame, match="exceeds") as info:
        decode_frame(b"\xff\xd8" + b"\x00" * 2000, max_frame_bytes=1000)
    assert info.value.reason == "too_large"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (H_SEQ, None),  # Kafka allows null header values
        ("emostream-stream-id", None),
        ("emostream-captured-ms", b"10000000000000000"),  # past year 9999: datetime would raise
        ("emostream-captured-ms", str(10**400).encode()),
        (H_SEQ, str(2**63).encode()),
        (H_SEQ, "١٢".encode()),  # int() accepts non-ASCII digits
        (H_SEQ, b" 1_0 "),  # and spaces and underscores
        (H_SEQ, b"-1"),
    ],
)
def test_out_of_range_and_null_headers_are_bad_headers(name, value):
    headers = [(k, value if k == name else v) for k, v in frame_headers(FrameMeta("cam", 1, 5))]
    with pytest.raises(InvalidFrame) as info:
        parse_headers(headers)
    assert info.value.reason == "bad_headers"


def test_largest_header_values_still_parse():
    from emostream.frames import MAX_CAPTURED_MS, MAX_SEQ

    meta = FrameMeta("cam", MAX_SEQ, MAX_CAPTURED_MS)
    assert parse_headers(frame_headers(meta)) == meta


def _webp_declaring(width: int, height: int) -> bytes:
    """A 30-byte WebP (VP8X) header that declares ``width`` x ``height``: a bomb's first bytes."""
    vp8x = b"VP8X" + (10).to_bytes(4, "little") + b"\x00" * 4
    vp8x += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return b"RIFF" + (len(vp8x) + 4).to_bytes(4, "little") + b"WEBP" + vp8x


@pytest.mark.parametrize("ext", [".webp", ".tiff", ".bmp", ".ppm", ".jp2"])
def test_formats_other_than_jpeg_and_png_are_unsupported_before_decoding(
    ext, astronaut_bgr, monkeypatch
):
    ok, buf = cv2.imencode(ext, astronaut_bgr[:64, :64])
    assert ok
    payloads = [buf.tobytes(), _webp_declaring(16000, 16000)]

    def no_decoding(*args):
        raise AssertionError("decoded an image of a format whose size is not checked")

    monkeypatch.setattr("emostream.frames.cv2.imdecode", no_decoding)
    for payload in payloads:
        with pytest.raises(InvalidFrame, match="not JPEG or PNG") as info:
            decode_frame(payload)
        assert info.value.reason == "unsupported_format"


@pytest.mark.parametrize("stream_id", ["cam-1\n", "cam-1\r\n", "\ncam-1", "cam 1"])
def test_stream_ids_are_matched_in_full(stream_id):
    # "$" matches before a trailing newline: "cam-1\n" passed, then every per-stream path 422d.
    with pytest.raises(ValueError):
        validate_stream_id(stream_id)
    headers = frame_headers(FrameMeta("cam-1", 1, 1))
    headers[0] = (headers[0][0], stream_id.encode())
    with pytest.raises(InvalidFrame) as info:
        parse_headers(headers)
    assert info.value.reason == "bad_headers"
