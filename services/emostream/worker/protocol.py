"""What the worker asks of a frame processor: two explicit stages, whichever path runs them.

The worker (``runner.Worker``) overlaps the stages across batches: batch k+1 is prepared in one
thread while batch k is finished in another, so ``prepare`` keeps to per-frame work and the
tracking it owns, and ``finish`` owns classification, smoothing and the events. ``process`` is
only ``finish(prepare(frames))`` (tests and benchmarks that do not overlap).

Both processing paths implement it: ``FrameProcessor`` (the CPU path: OpenCV decode, detection
per stream in threads) and ``DeviceFrameProcessor`` (decode, detection and crops batched as
torch ops on a device; CUDA on a GPU pod, the CPU in tests). ``ProcessorBase`` holds what they
share: the classifier, per-stream tracking and smoothing state, and the event building, so
events, changes and forgetting ended tracks are the same on both.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Generic, Protocol, TypeVar, final, runtime_checkable

from emostream.inference import EmotionEngine
from emostream.schemas import ModelInfo
from emostream.vision_options import SmoothingOptions
from emostream.worker.batch import BatchResult, Detected, RawFrame
from emostream.worker.classify_stage import ClassifyStage
from emostream.worker.streams import StreamStates

Prepared = TypeVar("Prepared")


@runtime_checkable
class Processor(Protocol[Prepared]):
    """Raw frame records in, a ``BatchResult`` (events, changes, dead letters, counts) out; a bad
    frame is rejected alone, never raised. ``prepare`` and ``finish`` are called in batch order,
    ``prepare`` of the next batch possibly while ``finish`` of this one runs."""

    @property
    def model_info(self) -> ModelInfo: ...

    def prepare(self, frames: list[RawFrame]) -> Prepared: ...

    def finish(self, prepared: Prepared) -> BatchResult: ...

    def process(self, frames: list[RawFrame]) -> BatchResult: ...

    def close(self) -> None: ...


AnyProcessor = Processor[Any]


class ProcessorBase(ABC, Generic[Prepared]):
    """The shared half of both paths: classifier, stream states (tracking and smoothing per
    stream, at most ``max_streams``, least recent evicted), event building."""

    max_frame_age_ms: int | None

    def __init__(
        self,
        engine: EmotionEngine,
        smoothing: SmoothingOptions | None = None,
        track_min_hits: int = 1,
        max_streams: int = 1000,
    ) -> None:
        self.engine = engine
        self.classify_stage = ClassifyStage(engine)
        self.streams = StreamStates(
            self.classify_stage.labels,
            smoothing or SmoothingOptions(),
            track_min_hits,
            max_streams,
        )

    @property
    def model_info(self) -> ModelInfo:
        return self.classify_stage.model_info

    @abstractmethod
    def prepare(self, frames: list[RawFrame]) -> Prepared:
        """Admit, decode, detect (and, on the CPU path, track and crop)."""

    @abstractmethod
    def finish(self, prepared: Prepared) -> BatchResult:
        """Classify, smooth, build the events, in the order the batches were prepared."""

    @final
    def process(self, frames: list[RawFrame]) -> BatchResult:
        """Both stages, one after the other (the worker overlaps them across batches)."""
        return self.finish(self.prepare(frames))

    def emit(self, result: BatchResult, frames: list[Detected], probs) -> None:
        """Classified faces of ``frames`` (``probs`` in face order) to events in ``result``."""
        self.classify_stage.emit(result, frames, probs, self.streams)

    def forget_ended(self, frames: list[Detected]) -> None:
        """Tracks that ended in ``frames`` leave their smoothers once the frames are classified."""
        for d in frames:
            if d.ended_tracks:
                smoother = self.streams.get(d.meta.stream_id).smoother
                for track_id in d.ended_tracks:
                    smoother.forget(track_id)

    def close(self) -> None:
        """Release threads and device resources (idempotent)."""
