"""The worker's processing with decode, detection and cropping batched on a torch device.

``FrameProcessor`` decodes with OpenCV, detects one frame at a time and crops on the host: on a
GPU pod that leaves the card idle behind two CPU cores. ``DeviceFrameProcessor`` keeps the same
contract (raw records in, events, changes and rejects out; per-stream tracking and smoothing in
capture order; a bad frame rejected alone) but moves the pixel work to ``device``:

1. limits checked on the host before decoding (size, declared dimensions, format), as the CPU
   path does; on CUDA, JPEGs decoded in one nvJPEG batch (``torchvision.io.decode_jpeg``, imported
   only here), a batch that fails retried frame by frame (OpenCV trying what nvJPEG cannot
   read) so only the corrupt frame is rejected;
   with ``host_decode``, off CUDA, and for PNGs: decoded with OpenCV in a thread pool, uploaded;
2. frames shrunk to ``max_width_px`` (area interpolation) and run through the PyTorch YuNet in
   one forward pass per frame size; only the boxes come back to the host;
3. tracking on the host (a few boxes per frame), in stream and capture order;
4. grey conversion and the official crops, resized for the classifier, in one ``grid_sample``,
   then classified from the device tensor; one copy of the probabilities back.

Every frame gets a full-frame scan (on a GPU a scan costs less than deciding to skip it).
"""

from __future__ import annotations

import contextlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch

from emostream.errors import InvalidFrame
from emostream.frames import (
    JPEG_MAGIC,
    FrameMeta,
    check_payload,
    decode_frame,
    parse_headers,
)
from emostream.inference import EmotionEngine
from emostream.schemas import Face, FaceBox
from emostream.vision import Detection, official_crop_box
from emostream.vision.device_ops import area_resize, bgr_to_gray, crop_resize
from emostream.vision.yunet_torch import TorchYuNetDetector
from emostream.worker.processing import (
    BatchResult,
    FrameProcessor,
    RawFrame,
    Rejected,
    _Detected,
)


@dataclass
class Prepared:
    """A batch after decode and detection, before tracking (``DeviceFrameProcessor.prepare``)."""

    result: BatchResult
    items: list[tuple[FrameMeta, RawFrame]] = field(default_factory=list)
    images: list[torch.Tensor] = field(default_factory=list)
    detections: list[list[Detection]] = field(default_factory=list)
    ready: torch.cuda.Event | None = None  # recorded on the stream that made ``images``


class DeviceFrameProcessor(FrameProcessor):
    """``FrameProcessor`` with decode, detection and crops batched on ``device`` (see module)."""

    def __init__(
        self,
        engine: EmotionEngine,
        device: str = "cuda",
        max_width_px: int | None = 480,
        min_face_px: int = 32,
        max_faces: int = 16,
        score_threshold: float = 0.7,
        host_decode: bool = False,
        decode_threads: int | None = None,
        timing: bool = False,
        **kwargs,
    ) -> None:
        self.device = torch.device(device)
        # nvJPEG or OpenCV threads: which is faster depends on the card and the pod's CPUs.
        self.host_decode = host_decode or self.device.type != "cuda"
        self._decode_pool = ThreadPoolExecutor(
            max_workers=decode_threads or os.cpu_count() or 1, thread_name_prefix="decode"
        )
        self.timing = timing
        self.stage_s: dict[str, float] = {}  # with ``timing``: seconds per stage, summed
        inner_min_px = min(16, min_face_px) if max_width_px else min_face_px
        detector = TorchYuNetDetector(
            score_threshold=score_threshold,
            min_face_px=inner_min_px,
            max_faces=max_faces,
            device=str(self.device),
        )
        super().__init__(detector, engine, **kwargs)
        self.yunet = detector
        self.max_width_px = max_width_px
        self.min_face_px = min_face_px

    def close(self) -> None:
        super().close()
        self._decode_pool.shutdown(wait=False, cancel_futures=True)

    def _lap(self, stage: str, t0: float) -> float:
        """With ``timing``: wait for the device, add the time since ``t0`` to ``stage``."""
        if not self.timing:
            return t0
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        now = time.perf_counter()
        self.stage_s[stage] = self.stage_s.get(stage, 0.0) + now - t0
        return now

    # -- decode ---------------------------------------------------------------------------
    def _decode_host(self, payload: bytes) -> torch.Tensor | InvalidFrame:
        try:
            image = decode_frame(payload)
        except InvalidFrame as exc:
            return exc
        # Blocking: a pageable upload may still be in flight when another stream reads it.
        return torch.from_numpy(image).permute(2, 0, 1).to(self.device)

    def _decode_all(self, payloads: list[bytes]) -> list[torch.Tensor | InvalidFrame]:
        """3 x H x W BGR uint8 on the device per payload, or the reason it was rejected."""
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
        for i, image in zip(
            host, self._decode_pool.map(self._decode_host, [payloads[i] for i in host])
        ):
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

    # -- detect ---------------------------------------------------------------------------
    def _detect_all(self, images: list[torch.Tensor]) -> list[list[Detection]]:
        """Faces per frame in frame pixels, as ``DownscaledDetector(TorchYuNet)`` reports them."""
        groups: dict[tuple[int, int], list[int]] = {}
        for i, image in enumerate(images):
            groups.setdefault(tuple(image.shape[-2:]), []).append(i)
        found: list[list[Detection]] = [[] for _ in images]
        for (h, w), members in groups.items():
            scale = max(w / self.max_width_px, 1.0) if self.max_width_px else 1.0
            sw, sh = (self.max_width_px, int(round(h / scale))) if scale > 1.0 else (w, h)
            batch = torch.stack([images[i] for i in members])
            small = area_resize(batch, sh, sw) if scale > 1.0 else batch.float()
            rows = self.yunet.detect_tensor(small)
            counts = [len(r) for r in rows]
            host = torch.cat(rows).float().cpu().numpy() if sum(counts) else np.zeros((0, 15))
            offsets = np.cumsum([0, *counts])
            for slot, i in enumerate(members):
                mine = host[offsets[slot] : offsets[slot + 1]]
                dets = self.yunet.detections_from_rows(mine, sw, sh)
                if scale > 1.0:
                    dets = self._to_frame(dets, scale, w, h)
                found[i] = dets
        return found

    def _to_frame(self, dets: list[Detection], scale: float, w: int, h: int) -> list[Detection]:
        out = []
        for d in dets:
            x, y = int(d.x * scale), int(d.y * scale)
            bw, bh = min(int(d.w * scale), w - x), min(int(d.h * scale), h - y)
            if min(bw, bh) >= self.min_face_px:
                out.append(Detection(x, y, bw, bh, d.score))
        return out

    # -- the batch ------------------------------------------------------------------------
    def process(self, frames: list[RawFrame]) -> BatchResult:
        return self.finish(self.prepare(frames))

    def prepare(self, frames: list[RawFrame], stream: torch.cuda.Stream | None = None) -> Prepared:
        """Headers, decode and detection: no per-stream state, so batch k+1 may be prepared
        (in another thread, on CUDA ``stream``) while batch k is finished."""
        result = BatchResult()
        accepted: list[tuple[FrameMeta, RawFrame]] = []
        for raw in frames:
            try:
                meta = parse_headers(raw.headers)
            except InvalidFrame as exc:
                result.rejected.append(Rejected(raw, exc.reason, str(exc), None))
                continue
            if self._stale(meta):
                result.count_stale(meta.stream_id)
                continue
            accepted.append((meta, raw))
        accepted.sort(key=lambda item: (item[0].stream_id, item[0].seq))
        prepared = Prepared(result)
        with torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext():
            t = time.perf_counter()
            decoded = self._decode_all([raw.value for _, raw in accepted])
            t = self._lap("decode", t)
            for (meta, raw), image in zip(accepted, decoded):
                if isinstance(image, InvalidFrame):
                    result.rejected.append(Rejected(raw, image.reason, str(image), meta.stream_id))
                else:
                    prepared.items.append((meta, raw))
                    prepared.images.append(image)
            try:
                prepared.detections = self._detect_all(prepared.images)
            except Exception as exc:  # noqa: BLE001 - reject the batch's frames, never crash
                for meta, raw in prepared.items:
                    result.rejected.append(
                        Rejected(
                            raw, "processing_error", f"detection failed: {exc}", meta.stream_id
                        )
                    )
                prepared.items, prepared.images = [], []
            self._lap("detect", t)
            if stream is not None:
                prepared.ready = torch.cuda.Event()
                prepared.ready.record(stream)
        return prepared

    def finish(self, prepared: Prepared) -> BatchResult:
        """Tracking (in stream and capture order), crops, classification, events."""
        result = prepared.result
        if prepared.ready is not None:  # the frames were made on another CUDA stream
            current = torch.cuda.current_stream(self.device)
            current.wait_event(prepared.ready)
            for image in prepared.images:
                image.record_stream(current)
        t = time.perf_counter()
        frames_out, boxes, frame_index = self._track(
            prepared.items, prepared.images, prepared.detections, result
        )
        t = self._lap("track", t)
        result.rejected.sort(key=lambda r: (r.frame.topic, r.frame.partition, r.frame.offset))
        faces = [(d, f) for d in frames_out for f in d.faces]
        if not faces:
            return result
        probs = self._classify(prepared.images, boxes, frame_index)
        t = self._lap("crop_classify", t)
        self._build_events(result, faces, probs)
        result.faces = len(faces)
        self._lap("events", t)
        return result

    def _track(
        self,
        items: list[tuple[FrameMeta, RawFrame]],
        images: list[torch.Tensor],
        detections: list[list[Detection]],
        result: BatchResult,
    ) -> tuple[list[_Detected], list[tuple[int, int, int, int]], list[int]]:
        """Tracking per stream in capture order; the crop boxes of confirmed faces and the index
        of the frame each is cut from."""
        frames_out: list[_Detected] = []
        boxes: list[tuple[int, int, int, int]] = []
        frame_index: list[int] = []
        for i, ((meta, raw), image, dets) in enumerate(zip(items, images, detections)):
            st = self._tracking(meta.stream_id)
            t_s = meta.captured_ms / 1000
            st.last_full_scan_s = t_s
            h, w = image.shape[-2:]
            kept = [
                (d, box)
                for d in dets
                if (box := official_crop_box(d.x, d.y, d.w, d.h, w, h)) is not None
            ]
            track_ids, ended = st.tracker.update([(d.x, d.y, d.w, d.h) for d, _ in kept], t_s)
            for t in ended:
                st.smoother.forget(t.track_id)
            is_confirmed = getattr(st.tracker, "is_confirmed", lambda _tid: True)
            frame = _Detected(meta, raw)
            confirmed = [(k, tid) for k, tid in zip(kept, track_ids) if is_confirmed(tid)]
            for index, ((det, box), tid) in enumerate(confirmed):
                boxes.append(box)
                frame_index.append(i)
                box_out = FaceBox(x=det.x, y=det.y, w=det.w, h=det.h)
                frame.faces.append(
                    Face(
                        index=index,
                        box=box_out,
                        detector_score=round(min(max(det.score, 0.0), 1.0), 4),
                        track_id=tid,
                    )
                )
            result.frames_ok += 1
            frames_out.append(frame)
        return frames_out, boxes, frame_index

    def _classify(
        self,
        images: list[torch.Tensor],
        boxes: list[tuple[int, int, int, int]],
        frame_index: list[int],
    ) -> np.ndarray:
        """Grey crops cut and resized on the device, classified from there: K x 7 on the host."""
        pre = self.engine.preprocessing
        groups: dict[tuple[int, int], list[int]] = {}
        for k, i in enumerate(frame_index):
            groups.setdefault(tuple(images[i].shape[-2:]), []).append(k)
        crops = torch.empty((len(boxes), 1, pre.input_size, pre.input_size), device=self.device)
        for members in groups.values():
            frames_needed = sorted({frame_index[k] for k in members})
            local = {i: j for j, i in enumerate(frames_needed)}
            gray = bgr_to_gray(torch.stack([images[i] for i in frames_needed]))
            idx = torch.tensor([local[frame_index[k]] for k in members], device=self.device)
            b = torch.tensor([boxes[k] for k in members], device=self.device)
            crops[torch.tensor(members, device=self.device)] = crop_resize(
                gray, idx, b, pre.input_size, pre.interpolation
            )
        x = crops.div_(255.0).expand(-1, 3, -1, -1)
        return self.engine.classify_tensor(x)
