"""Frames decoded onto a torch device: nvJPEG in one batch on CUDA, else OpenCV threads."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import torch

from emostream.errors import InvalidFrame
from emostream.frames import JPEG_MAGIC, check_payload, decode_frame


class DeviceDecoder:
    """3 x H x W BGR uint8 tensors on ``device`` from frame payloads (``DeviceFrameProcessor``).

    Limits are checked on the host before decoding (size, declared dimensions, format), as the
    CPU path does. On CUDA, JPEGs are decoded in one nvJPEG batch (``torchvision.io``, imported
    only here); a batch that fails is retried frame by frame (OpenCV trying what nvJPEG cannot
    read), so only the corrupt frame is rejected. With ``host_decode``, off CUDA, and for PNGs:
    OpenCV in a thread pool, then an upload.
    """

    def __init__(self, device: torch.device, host_decode: bool, threads: int | None) -> None:
        self.device = device
        # nvJPEG or OpenCV threads: which is faster depends on the card and the pod's CPUs.
        self.host_decode = host_decode or device.type != "cuda"
        self._pool = ThreadPoolExecutor(
            max_workers=threads or os.cpu_count() or 1, thread_name_prefix="decode"
        )

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _decode_host(self, payload: bytes) -> torch.Tensor | InvalidFrame:
        try:
            image = decode_frame(payload)
        except InvalidFrame as exc:
            return exc
        # Blocking: a pageable upload may still be in flight when another stream reads it.
        return torch.from_numpy(image).permute(2, 0, 1).to(self.device)

    def decode_all(self, payloads: list[bytes]) -> list[torch.Tensor | InvalidFrame]:
        """The image on the device per payload, or the reason it was rejected."""
        out: list[torch.Tensor | InvalidFrame | None] = [None] * len(payloads)
        jpegs, host = [], []
        for i, payload in enumerate(payloads):
            try:
                check_payload(payload)
            except InvalidFrame as exc:
                out[i] = exc
                continue
            if not self.host_decode and payload.startswith(JPEG_MAGIC):
                jpegs.append(i)
            else:
                host.append(i)
        for i, image in zip(host, self._pool.map(self._decode_host, [payloads[i] for i in host])):
            out[i] = image
        if jpegs:
            for i, image in zip(jpegs, self._nvjpeg([payloads[i] for i in jpegs])):
                out[i] = image
        return out  # type: ignore[return-value]

    def _nvjpeg(self, payloads: list[bytes]) -> list[torch.Tensor | InvalidFrame]:
        # torchvision only here: its wheels on the CPU index do not load with the CPU torch.
        from torchvision.io import ImageReadMode, decode_jpeg

        data = [torch.frombuffer(bytearray(p), dtype=torch.uint8) for p in payloads]
        try:
            rgb = decode_jpeg(data, mode=ImageReadMode.RGB, device=self.device)
            return [img.flip(0) for img in rgb]
        except Exception:  # noqa: BLE001 - one bad frame fails the batch: find it, keep the rest
            out: list[torch.Tensor | InvalidFrame] = []
            for payload, d in zip(payloads, data):
                try:
                    out.append(decode_jpeg(d, mode=ImageReadMode.RGB, device=self.device).flip(0))
                except Exception:  # noqa: BLE001 - a JPEG nvJPEG cannot read: OpenCV may
                    out.append(self._decode_host(payload))
            return out
