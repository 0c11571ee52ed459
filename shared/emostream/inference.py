"""Batched emotion classification for the worker: the model's preprocessing, any device/dtype."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import structlog
import torch

from emostream.errors import CheckpointError, ConfigError
from emostream.models.checkpoint import (
    DEFAULT_CHECKPOINT,
    EmotionClassifier,
    EnsembleClassifier,
    load_checkpoint,
    load_models,
    untrained_model,
)
from emostream.onnx_cpu import OnnxCpuModule, cpu_network
from emostream.vision_options import ModelOptions

log = structlog.get_logger(__name__)
_INTERP = {"bilinear": cv2.INTER_LINEAR, "area": cv2.INTER_AREA}


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but no CUDA device is available")
    return torch.device(device)


def cpu_has_native_bf16() -> bool:
    """True on CPUs with bf16 matrix instructions (AMX or AVX512-BF16), where bf16 is much faster.

    Elsewhere bf16 is emulated and several times slower than fp32.
    """
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def pick_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``auto``: fp16 on CUDA, bf16 on CPUs with native bf16, else fp32."""
    if dtype == "auto":
        if device.type == "cuda":
            return torch.float16
        return torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    if dtype == "fp16" and device.type != "cuda":
        raise ConfigError("fp16 needs a CUDA device; use fp32 or bf16 on CPU")
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]


class EmotionEngine:
    """Preprocess grey face crops as the model's config says and classify them in batches."""

    def __init__(
        self,
        model: EmotionClassifier | EnsembleClassifier,
        device: str = "auto",
        dtype: str = "fp32",
        max_batch: int = 64,
        channels_last: bool = True,
        flip_tta: bool = False,
        runtime: str = "torch",
    ) -> None:
        self.device = pick_device(device)
        self.flip_tta = flip_tta
        self.dtype = pick_dtype(dtype, self.device)
        self.max_batch = max_batch
        self.channels_last = channels_last
        self.preprocessing = model.preprocessing
        model = model.to(self.device, dtype=self.dtype).eval()
        if channels_last:
            # torch's stubs leave out Module.to(memory_format=...), which it has.
            model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.model = model
        self._forward = self._network(runtime)
        if isinstance(self._forward, OnnxCpuModule):
            self.channels_last = False  # ONNX Runtime takes contiguous NCHW arrays

    def _network(self, runtime: str):
        """The model, or its ONNX Runtime twin (``emostream.onnx_cpu``) for float32 on the CPU."""
        size = self.preprocessing.input_size
        example = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0))
        threads = torch.get_num_threads()
        return cpu_network(self.model, example, (0,), runtime, threads, "classifier")

    @property
    def runtime(self) -> str:
        """What runs the model: ``onnxruntime`` or ``torch``."""
        return "onnxruntime" if isinstance(self._forward, OnnxCpuModule) else "torch"

    @property
    def model_name(self) -> str:
        return self.model.name

    @property
    def model_version(self) -> str:
        return self.model.version

    @property
    def trained(self) -> bool:
        return self.model.trained

    def _resized(self, gray_crops: list[np.ndarray]) -> np.ndarray:
        """Grey uint8 crops -> N x S x S uint8, resized as the model's preprocessing says."""
        size = self.preprocessing.input_size
        interp = _INTERP.get(self.preprocessing.interpolation, cv2.INTER_LINEAR)
        return np.stack([cv2.resize(c, (size, size), interpolation=interp) for c in gray_crops])

    def preprocess(self, gray_crops: list[np.ndarray]) -> torch.Tensor:
        """Grey uint8 crops -> N x 3 x S x S float tensor in [0, 1]."""
        batch = self._resized(gray_crops)
        return torch.from_numpy(batch).float().div_(255.0).unsqueeze(1).expand(-1, 3, -1, -1)

    @torch.inference_mode()
    def _classify_cuda(self, batch_u8: np.ndarray) -> np.ndarray:
        """GPU path: uint8 crops (4x less to copy than floats) from pinned memory, uploaded on a
        side stream so that chunk k+1 is copied while chunk k runs; one sync at the end."""
        host = torch.from_numpy(batch_u8).pin_memory()
        copy_stream = torch.cuda.Stream(device=self.device)
        compute = torch.cuda.current_stream(self.device)
        uploads = []
        with torch.cuda.stream(copy_stream):
            for start in range(0, len(host), self.max_batch):
                chunk = host[start : start + self.max_batch].to(self.device, non_blocking=True)
                done = torch.cuda.Event()
                done.record(copy_stream)
                uploads.append((chunk, done))
        logits = []
        for chunk, done in uploads:
            compute.wait_event(done)
            chunk.record_stream(compute)
            x = chunk.to(self.dtype).div_(255.0).unsqueeze(1).expand(-1, 3, -1, -1)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            logits.append(self._probs(x))
        probs = torch.cat(logits).double().cpu().numpy()
        return probs / probs.sum(axis=1, keepdims=True)

    def _probs(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax of one batch; with ``flip_tta`` the mean over it and its mirror image."""
        if not self.flip_tta:
            return torch.softmax(self._forward(x).float(), dim=1)
        # One forward over the batch and its mirror: the same outputs (eval mode, per-sample) for
        # about half the per-call overhead, which dominates the worker's small CPU batches.
        both = torch.cat([x, x.flip(-1)])
        if self.channels_last:
            both = both.contiguous(memory_format=torch.channels_last)
        probs = torch.softmax(self._forward(both).float(), dim=1)
        return (probs[: len(x)] + probs[len(x) :]) / 2

    @torch.inference_mode()
    def classify_tensor(self, x: torch.Tensor) -> np.ndarray:
        """N x 3 x S x S in [0, 1] -> N x 7 probabilities (float64 rows summing to 1)."""
        out = []
        for start in range(0, len(x), self.max_batch):
            chunk = x[start : start + self.max_batch].to(self.device, dtype=self.dtype)
            if self.channels_last:
                chunk = chunk.contiguous(memory_format=torch.channels_last)
            out.append(self._probs(chunk).double().cpu())
        if not out:
            return np.zeros((0, len(self.preprocessing.labels)))
        probs = torch.cat(out).numpy()
        return probs / probs.sum(axis=1, keepdims=True)

    def classify(self, gray_crops: list[np.ndarray]) -> np.ndarray:
        """Grey uint8 face crops -> N x 7 probabilities."""
        if not gray_crops:
            return np.zeros((0, len(self.preprocessing.labels)))
        if self.device.type == "cuda":
            return self._classify_cuda(self._resized(gray_crops))
        return self.classify_tensor(self.preprocess(gray_crops))


def engine_from_settings(settings: ModelOptions) -> EmotionEngine:
    """The classifier as the worker runs it: the configured model, device, dtype, batch, TTA."""
    return EmotionEngine(
        load_model(settings),
        settings.device,
        settings.dtype,
        settings.max_batch_faces,
        flip_tta=settings.flip_tta,
        runtime=settings.runtime,
    )


def load_model(settings: ModelOptions) -> EmotionClassifier | EnsembleClassifier:
    """The configured checkpoint, else the packaged default, else (if allowed) an untrained RMN."""
    if settings.threads:
        torch.set_num_threads(settings.threads)
    if settings.checkpoint:  # several, separated by commas: an ensemble (mean softmax)
        return load_models(settings.checkpoint)
    if Path(DEFAULT_CHECKPOINT).is_file():
        try:
            return load_checkpoint(DEFAULT_CHECKPOINT)
        except CheckpointError as exc:
            if not settings.allow_untrained:
                raise
            log.error("packaged checkpoint unreadable", error=str(exc))
    if not settings.allow_untrained:
        raise ConfigError(
            f"no trained model: set EMOSTREAM_MODEL__CHECKPOINT or restore {DEFAULT_CHECKPOINT}"
        )
    log.warning(
        "UNTRAINED MODEL: no trained checkpoint found, emotions are random; every event says "
        "model.trained=false",
        expected=str(DEFAULT_CHECKPOINT),
    )
    return untrained_model()
