"""Settings sections of the worker's perception (detector, smoothing, classifier), shared by the
worker, the demo and the tools; the connection sections are ``emostream.settings``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class DetectorOptions(BaseModel):
    """Face detection before classification."""

    kind: Literal["haar", "yunet", "yunet_torch"] = Field(
        "yunet_torch",
        description="yunet_torch: YuNet in PyTorch, weights packaged, tracked faces searched in "
        "one batch; yunet: OpenCV's, needs yunet_model or `emostream models pull`; haar",
    )
    yunet_model: str | None = Field(
        None, description="YuNet ONNX file; default: the one `emostream models pull` fetched"
    )
    min_face_px: int = Field(32, ge=10, description="Smaller faces are ignored")
    max_width_px: int | None = Field(480, ge=64, description="Downscale wider frames to detect")
    score_threshold: float = Field(
        0.7, ge=0.0, le=1.0, description="Detections scoring lower are dropped"
    )
    max_faces: int = Field(16, ge=1, description="Most faces kept per frame, largest first")
    full_scan_interval_s: float = Field(
        0.5,
        ge=0.0,
        le=10.0,
        description="Between full-frame scans (at most this far apart, capture time) detect only "
        "around tracked faces; 0 scans every frame in full",
    )
    threads: int | None = Field(
        None, ge=1, le=64, description="Detection threads; default: CPU count"
    )
    runtime: Literal["auto", "torch", "onnxruntime"] = Field(
        "auto",
        description="Runs yunet_torch on the CPU; auto: ONNX Runtime (exported at start, 2-12x "
        "faster), torch on a GPU",
    )


class SmoothingOptions(BaseModel):
    """Per-track smoothing of emotions (``emostream.tracking.EmotionSmoother``).

    Attributes:
        half_life_s: half-life of the exponential moving average of probabilities.
        hold_s: how long another emotion must lead before the reported one switches.
        min_confidence: below this top probability a frame votes "uncertain".
        uncertain_hold_factor: abstaining ("uncertain") needs this many times ``hold_s``.
    """

    half_life_s: float = Field(
        0.25, ge=0, description="Half-life of the moving average of emotion probabilities"
    )
    hold_s: float = Field(
        0.3, ge=0, description="Time another emotion must lead before the reported one switches"
    )
    min_confidence: float = Field(
        0.35, ge=0, le=1, description='Below this top probability a frame votes "uncertain"'
    )
    uncertain_hold_factor: float = Field(
        2.0, ge=1, description='Switching to "uncertain" needs this many times the hold'
    )


class ModelOptions(BaseModel):
    """Emotion classifier: a checkpoint (default: the packaged one) and how to run it."""

    checkpoint: str | None = Field(
        None,
        description="checkpoint path; several separated by commas run as an ensemble "
        "(mean of their softmax)",
    )
    allow_untrained: bool = Field(
        True,
        description="Without a readable checkpoint run an untrained model (events say "
        "model.trained=false) instead of stopping",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="auto: cuda when available, else cpu"
    )
    dtype: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="auto: fp16 on CUDA, bf16 on CPUs with AMX/AVX512-BF16, else fp32"
    )
    max_batch_faces: int = Field(64, ge=1, description="Faces per classifier batch")
    flip_tta: bool = Field(
        True,
        description="Average each face with its mirror image: +1.5 points "
        "on PublicTest for the packaged model, at twice the classifier cost",
    )
    runtime: Literal["auto", "torch", "onnxruntime"] = Field(
        "auto",
        description="Runs the classifier on the CPU; auto: ONNX Runtime for float32 (exported at "
        "start, 1.4-2.2x faster), torch otherwise",
    )
    threads: int | None = Field(
        None,
        ge=1,
        description="Torch CPU threads; default: a quarter of the CPU count (at least 1) in the "
        "worker, whose classification overlaps detection; torch's own (the CPU count) in tools",
    )
