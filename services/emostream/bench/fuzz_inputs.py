"""Inputs for `emostream bench fuzz-frames`: real encoder output, its mutations, odd headers."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from emostream.frames import (
    H_CAPTURED,
    H_LIVE,
    H_SEQ,
    H_STREAM,
    MAX_FRAME_BYTES,
    MAX_SIDE_PX,
    FrameMeta,
    encode_frame,
    frame_headers,
)

Rng = np.random.Generator


def seed_payloads() -> list[bytes]:
    """Real encoder output: JPEG (baseline, progressive, grey, tiny) and PNG (colour, grey)."""
    from emostream.ingest.sources import sample_frames
    from emostream.sample_photo import astronaut_bgr

    astronaut = astronaut_bgr()
    small = cv2.resize(astronaut, (96, 96), interpolation=cv2.INTER_AREA)
    clip = next(iter(sample_frames(1, 320, 180)))
    grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    seeds = [
        encode_frame(small, 85),
        encode_frame(small, 30),
        encode_frame(clip, 85),
        encode_frame(grey, 85),
        encode_frame(astronaut[:8, :8], 90),
    ]
    seeds.append(cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes())
    seeds.append(cv2.imencode(".png", small)[1].tobytes())
    seeds.append(cv2.imencode(".png", grey)[1].tobytes())
    return seeds


def _chunk(rng: Rng, data: bytes) -> tuple[int, int]:
    start = int(rng.integers(0, len(data)))
    return start, min(len(data), start + int(rng.integers(1, 256)))


def _truncate(rng: Rng, seeds: list[bytes]) -> bytes:
    data = seeds[rng.integers(len(seeds))]
    return data[: int(rng.integers(0, len(data)))]


def _flip_bytes(rng: Rng, seeds: list[bytes]) -> bytes:
    data = bytearray(seeds[rng.integers(len(seeds))])
    for pos in rng.integers(0, len(data), int(rng.integers(1, 17))):
        data[pos] = int(rng.integers(0, 256))
    return bytes(data)


def _flip_bits(rng: Rng, seeds: list[bytes]) -> bytes:
    data = bytearray(seeds[rng.integers(len(seeds))])
    for pos in rng.integers(0, len(data), int(rng.integers(1, 9))):
        data[pos] ^= 1 << int(rng.integers(0, 8))
    return bytes(data)


def _insert(rng: Rng, seeds: list[bytes]) -> bytes:
    data = seeds[rng.integers(len(seeds))]
    pos = int(rng.integers(0, len(data)))
    return data[:pos] + rng.bytes(int(rng.integers(1, 512))) + data[pos:]


def _delete(rng: Rng, seeds: list[bytes]) -> bytes:
    data = seeds[rng.integers(len(seeds))]
    start, end = _chunk(rng, data)
    return data[:start] + data[end:]


def _duplicate(rng: Rng, seeds: list[bytes]) -> bytes:
    data = seeds[rng.integers(len(seeds))]
    start, end = _chunk(rng, data)
    pos = int(rng.integers(0, len(data)))
    return data[:pos] + data[start:end] + data[pos:]


def _splice(rng: Rng, seeds: list[bytes]) -> bytes:
    a, b = (seeds[i] for i in rng.integers(0, len(seeds), 2))
    return a[: int(rng.integers(1, len(a)))] + b[int(rng.integers(0, len(b))) :]


def _dimensions(rng: Rng, seeds: list[bytes]) -> bytes:
    """Declared width and height rewritten (zero, plausible, or decompression-bomb sized)."""
    data = bytearray(seeds[rng.integers(len(seeds))])
    big = [0, 1, MAX_SIDE_PX, MAX_SIDE_PX + 1, 65535, int(rng.integers(0, 65536))]
    w, h = (int(rng.choice(big)) for _ in range(2))
    if data[:4] == b"\x89PNG":
        data[16:20] = w.to_bytes(4, "big")
        data[20:24] = h.to_bytes(4, "big")
        return bytes(data)
    i = 2
    while i + 9 < len(data):
        marker, length = data[i + 1], int.from_bytes(data[i + 2 : i + 4], "big")
        if marker in (0xC0, 0xC2):
            data[i + 5 : i + 7] = h.to_bytes(2, "big")
            data[i + 7 : i + 9] = w.to_bytes(2, "big")
            break
        i += 2 + length
    return bytes(data)


def _random(rng: Rng, seeds: list[bytes]) -> bytes:
    return rng.bytes(int(rng.integers(0, 4096)))


def _random_with_magic(rng: Rng, seeds: list[bytes]) -> bytes:
    magic = [b"\xff\xd8\xff\xe0", b"\xff\xd8\xff\xc0", b"\x89PNG\r\n\x1a\n"][rng.integers(3)]
    return magic + rng.bytes(int(rng.integers(0, 4096)))


def _empty(rng: Rng, seeds: list[bytes]) -> bytes | None:
    return None if rng.integers(2) else b""


def _oversize(rng: Rng, seeds: list[bytes]) -> bytes:
    data = seeds[rng.integers(len(seeds))]
    return data + bytes(MAX_FRAME_BYTES + 1 - len(data))


# name -> (mutator, weight); oversize payloads are rare because each allocates 8 MiB.
MUTATIONS: dict[str, tuple[Callable[[Rng, list[bytes]], bytes | None], int]] = {
    "unchanged": (lambda rng, seeds: seeds[rng.integers(len(seeds))], 2),
    "truncate": (_truncate, 12),
    "flip_bytes": (_flip_bytes, 12),
    "flip_bits": (_flip_bits, 10),
    "insert": (_insert, 8),
    "delete": (_delete, 8),
    "duplicate": (_duplicate, 6),
    "splice": (_splice, 6),
    "dimensions": (_dimensions, 10),
    "random": (_random, 10),
    "random_with_magic": (_random_with_magic, 8),
    "empty": (_empty, 2),
    "oversize": (_oversize, 1),
}


def fuzz_headers(rng: Rng) -> list[tuple[str, bytes | None]]:
    """A valid header list, then dropped, replaced, duplicated or extra headers."""
    meta = FrameMeta(
        f"cam-{rng.integers(100)}",
        int(rng.integers(0, 2**40)),
        int(rng.integers(0, 2**42)),
        bool(rng.integers(2)),
    )
    headers: list[tuple[str, bytes | None]] = list(frame_headers(meta))
    weird = [
        None,
        b"",
        b"-1",
        b" 7",
        b"1_0",
        "١٢".encode(),
        b"9" * 30,
        b"\xff\xfe",
        b"x" * 200,
        b"cam one",
        b"../etc",
        str(2**63).encode(),
        b"253402300800000",
        b"0",
    ]
    for _ in range(int(rng.integers(0, 4))):
        op = int(rng.integers(5))
        if op == 0 and headers:  # drop one
            headers.pop(int(rng.integers(len(headers))))
        elif op == 1 and headers:  # replace a value
            i = int(rng.integers(len(headers)))
            value = (
                weird[rng.integers(len(weird))]
                if rng.integers(2)
                else rng.bytes(int(rng.integers(0, 24)))
            )
            headers[i] = (headers[i][0], value)
        elif op == 2 and headers:  # duplicate one (the last wins)
            headers.append(headers[int(rng.integers(len(headers)))])
        elif op == 3:  # an extra header
            name = [H_STREAM, H_SEQ, H_CAPTURED, H_LIVE, "x-extra", ""][rng.integers(6)]
            headers.append((name, weird[rng.integers(len(weird))]))
        else:
            rng.shuffle(headers)
    return headers
