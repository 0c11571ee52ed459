"""The worker's processing with decode, detection and cropping batched on a torch device.

``FrameProcessor`` decodes with OpenCV, detects one frame at a time and crops on the host: on a
GPU pod that leaves the card idle behind two CPU cores. ``DeviceFrameProcessor`` keeps the same
contract (raw records in, events, changes and rejects out; per-stream tracking and smoothing in
capture order; a bad frame rejected alone) and the same stages, with the pixel work on ``device``:

1. admit (headers, freshness) as the CPU path does; decode on the device (``DeviceDecoder``);
2. detection in one forward pass per frame size (``DeviceDetector``);
3. tracking on the host (a few boxes per frame), in stream and capture order (``track_faces``);
4. grey conversion and the official crops, resized for the classifier, in one ``grid_sample``,
   then classified from the device tensor; one copy of the probabilities back; events built by
   the same ``ClassifyStage`` as the CPU path.

Every frame gets a full-frame scan (on a GPU a scan costs less than deciding to skip it). On
CUDA, ``prepare`` runs on a side stream of its own, so the worker's overlap of the stages (batch
k+1 prepared while batch k is finished) overlaps on the card too. The worker builds it with
``EMOSTREAM_WORKER__PATH=device`` (or ``auto`` where CUDA is present); on the CPU it runs the
same torch ops, which is how the tests run it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from emostream.errors import InvalidFrame
from emostream.frames import FrameMeta
from emostream.inference import EmotionEngine
from emostream.vision import Detection
from emostream.vision.device_ops import bgr_to_gray, crop_resize
from emostream.vision_options import SmoothingOptions
from emostream.worker.batch import BatchResult, Detected, RawFrame
from emostream.worker.detect_stage import Box, admit, is_stale, kept_boxes, track_faces
from emostream.worker.device_decode import DeviceDecoder
from emostream.worker.device_detect import DeviceDetector
from emostream.worker.protocol import ProcessorBase


@dataclass
class DeviceBatch:
    """A batch after decode and detection, before tracking (``DeviceFrameProcessor.prepare``)."""

    result: BatchResult
    items: list[tuple[FrameMeta, RawFrame]] = field(default_factory=list)
    images: list[torch.Tensor] = field(default_factory=list)
    detections: list[list[Detection]] = field(default_factory=list)
    ready: torch.cuda.Event | None = None  # recorded on the stream that made ``images``


class DeviceFrameProcessor(ProcessorBase[DeviceBatch]):
    """The worker's processor with decode, detection and crops batched on ``device`` (see
    module); tracking, smoothing and events as ``FrameProcessor``'s (``ProcessorBase``)."""

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
        smoothing: SmoothingOptions | None = None,
        max_frame_age_ms: int | None = None,
        track_min_hits: int = 1,
        max_streams: int = 1000,
    ) -> None:
        super().__init__(engine, smoothing, track_min_hits, max_streams)
        self.max_frame_age_ms = max_frame_age_ms
        self.device = torch.device(device)
        self.decoder = DeviceDecoder(self.device, host_decode, decode_threads)
        self.device_detector = DeviceDetector(
            self.device, max_width_px, min_face_px, max_faces, score_threshold
        )
        self.timing = timing
        self.stage_s: dict[str, float] = {}  # with ``timing``: seconds per stage, summed
        cuda = self.device.type == "cuda"
        self._side = torch.cuda.Stream(self.device) if cuda else None  # ``prepare``'s stream

    @property
    def host_decode(self) -> bool:
        return self.decoder.host_decode

    def close(self) -> None:
        self.decoder.close()

    def _lap(self, stage: str, t0: float, result: BatchResult) -> float:
        """The time since ``t0`` to ``stage`` of ``result`` (the worker's stage totals); with
        ``timing`` after waiting for the device, and summed in ``stage_s`` too."""
        if self.timing and self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        now = time.perf_counter()
        result.add_time(stage, now - t0)
        if self.timing:
            self.stage_s[stage] = self.stage_s.get(stage, 0.0) + now - t0
        return now

    def prepare(self, frames: list[RawFrame]) -> DeviceBatch:
        """Headers, decode and detection: no per-stream state, so batch k+1 may be prepared
        (in another thread, on CUDA on a side stream) while batch k is finished."""
        result = BatchResult()
        accepted = admit(frames, result, self.max_frame_age_ms)
        prepared = DeviceBatch(result)
        stream = self._side
        with torch.cuda.stream(stream):  # None: the current stream
            t = time.perf_counter()
            decoded = self.decoder.decode_all([raw.value for _, raw in accepted])
            t = self._lap("decode", t, result)
            for (meta, raw), image in zip(accepted, decoded):
                if isinstance(image, InvalidFrame):
                    result.reject(raw, image.reason, str(image), meta.stream_id)
                else:
                    prepared.items.append((meta, raw))
                    prepared.images.append(image)
            try:
                prepared.detections = self.device_detector.detect_all(prepared.images)
            except Exception as exc:  # noqa: BLE001 - reject the batch's frames, never crash
                for meta, raw in prepared.items:
                    detail = f"detection failed: {exc}"
                    result.reject(raw, "processing_error", detail, meta.stream_id)
                prepared.items, prepared.images = [], []
            self._lap("detect", t, result)
            if stream is not None:
                prepared.ready = torch.cuda.Event()
                prepared.ready.record(stream)
        return prepared

    def finish(self, prepared: DeviceBatch) -> BatchResult:
        """Tracking (in stream and capture order), crops, classification, events."""
        result = prepared.result
        if prepared.ready is not None:  # the frames were made on another CUDA stream
            current = torch.cuda.current_stream(self.device)
            current.wait_event(prepared.ready)
            for image in prepared.images:
                image.record_stream(current)
        t = time.perf_counter()
        frames_out, boxes, frame_index = self._track(prepared)
        result.frames_ok += len(frames_out)
        t = self._lap("track", t, result)
        if boxes:
            probs = self._classify(prepared.images, boxes, frame_index)
            t = self._lap("classify", t, result)
            self.emit(result, frames_out, probs)
            self._lap("events", t, result)
        self.forget_ended(frames_out)
        result.sort_rejected()
        return result

    def _track(self, prepared: DeviceBatch) -> tuple[list[Detected], list[Box], list[int]]:
        """Tracking per stream in capture order; the crop boxes of confirmed faces and the index
        of the frame each is cut from. Frames that aged past the limit meanwhile are dropped
        (counted), as on the CPU path."""
        frames_out: list[Detected] = []
        boxes: list[Box] = []
        frame_index: list[int] = []
        result = prepared.result
        for i, ((meta, raw), image, dets) in enumerate(
            zip(prepared.items, prepared.images, prepared.detections)
        ):
            if is_stale(meta, self.max_frame_age_ms):
                result.count_stale(meta.stream_id)
                continue
            st = self.streams.get(meta.stream_id)
            t_s = meta.captured_ms / 1000
            st.last_full_scan_s = t_s
            h, w = image.shape[-2:]
            frame = Detected(meta, raw)
            tracked = track_faces(st, kept_boxes(dets, w, h), t_s, frame.ended_tracks.append)
            for box, face in tracked:
                boxes.append(box)
                frame_index.append(i)
                frame.faces.append(face)
            frames_out.append(frame)
        return frames_out, boxes, frame_index

    def _classify(self, images: list[torch.Tensor], boxes: list[Box], frame_index: list[int]):
        """Grey crops cut and resized on the device, classified from there: K x labels on host."""
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
        return np.asarray(self.engine.classify_tensor(x))
