"""What decoding an image will cost, read from its header bytes alone (JPEG SOF, PNG IHDR).

Checked before any full decode, by the worker and by ingest: the declared width, height,
channels and bits per sample give the bytes the decoder must produce, and an image over the
decode budget is refused without being decoded. Decoding time grows with those bytes (about
3.5 ms per MB on the 2-core test machine).
"""

from __future__ import annotations

from dataclasses import dataclass

JPEG_MAGIC = b"\xff\xd8"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_PROGRESSIVE = {0xC2, 0xC6, 0xCA, 0xCE}  # the decoder keeps every coefficient: 2 bytes a sample
# PNG colour type -> samples per pixel once decoded (a palette expands to RGB)
_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}


@dataclass(frozen=True)
class ImageHeader:
    """What the header declares: pixels, samples per pixel, bytes per sample."""

    width: int
    height: int
    channels: int
    sample_bytes: int  # 1 (8-bit), 2 (16-bit PNG, 12-bit or progressive JPEG)

    @property
    def decode_bytes(self) -> int:
        """Bytes a decoder fills: every pixel's samples, at least the 3 of the BGR result."""
        return self.width * self.height * max(self.channels, 3) * self.sample_bytes

    def describe(self) -> str:
        bits = 8 * self.sample_bytes
        return f"{self.width}x{self.height}, {self.channels} channel(s) of {bits} bits"


def _png(payload: bytes) -> ImageHeader | None:
    if len(payload) < 26 or payload[12:16] != b"IHDR":
        return None
    depth, colour = payload[24], payload[25]
    if colour not in _PNG_CHANNELS:
        return None
    return ImageHeader(
        int.from_bytes(payload[16:20], "big"),
        int.from_bytes(payload[20:24], "big"),
        _PNG_CHANNELS[colour],
        2 if depth > 8 else 1,
    )


def _jpeg(payload: bytes) -> ImageHeader | None:
    i = 2
    while i + 9 < len(payload):
        if payload[i] != 0xFF:
            i += 1
            continue
        marker = payload[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
            i += 1 if marker == 0xFF else 2
            continue
        length = int.from_bytes(payload[i + 2 : i + 4], "big")
        if marker in _SOF:
            precision, channels = payload[i + 4], payload[i + 9]
            wide = precision > 8 or marker in _PROGRESSIVE
            h = int.from_bytes(payload[i + 5 : i + 7], "big")
            w = int.from_bytes(payload[i + 7 : i + 9], "big")
            return ImageHeader(w, h, channels, 2 if wide else 1)
        if marker == 0xDA:  # start of scan: no SOF before it
            return None
        i += 2 + length
    return None


def read_header(payload: bytes) -> ImageHeader | None:
    """The JPEG SOF or PNG IHDR header of ``payload``; None if it has none before the data."""
    if payload[:8] == PNG_MAGIC:
        return _png(payload)
    if payload[:2] == JPEG_MAGIC:
        return _jpeg(payload)
    return None
