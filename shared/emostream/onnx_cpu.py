"""Run a PyTorch network with ONNX Runtime on the CPU: the same outputs in a fraction of the time.

The worker's CPU inputs are small (a few faces, a few 64 px track windows, one 480 px frame), and
on them PyTorch's eager mode spends most of a call dispatching operators one by one. ONNX Runtime
runs the same graph, exported once at start-up, without that overhead. Measured on the 2-vCPU
dev machine, one thread, both runtimes in one run (`emostream bench runtime`, BENCHMARKS.md): YuNet
on a 480 x 288 frame 8.6 -> 3.9 ms, on one 64 px window 2.6 -> 0.21 ms, on 16 windows 5.7 -> 2.0;
the packaged classifier on a face and its mirror 11.4 -> 5.3 ms, on 16 faces 92 -> 64 ms. Outputs
agree with torch's to ~1e-6; each session is checked against torch on an example input first.

``runtime`` is ``torch``, ``onnxruntime`` or ``auto`` (ONNX Runtime where it applies: a float32
network on the CPU; torch otherwise, and torch with a warning if the export fails).
"""

from __future__ import annotations

import functools
import hashlib
import io
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import structlog
import torch

from emostream.errors import ConfigError

log = structlog.get_logger(__name__)

RUNTIMES = ("auto", "torch", "onnxruntime")
# Sessions kept per process (each holds one network's weights: 0.2-20 MB).
_MAX_SESSIONS = 8


class OnnxCpuModule:
    """Calls an ONNX Runtime session like the module it was exported from (tensors in and out)."""

    def __init__(self, session: Any, outputs: int) -> None:
        self.session = session
        self.outputs = outputs

    def __call__(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        arrays = self.session.run(None, {"x": x.detach().float().contiguous().numpy()})
        tensors = tuple(torch.from_numpy(a) for a in arrays)
        return tensors[0] if self.outputs == 1 else tensors


def cpu_network(
    module: torch.nn.Module,
    example: torch.Tensor,
    dynamic_dims: Sequence[int],
    runtime: str,
    threads: int,
    what: str,
) -> Callable[[torch.Tensor], Any]:
    """``module`` itself, or an ONNX Runtime twin of it where ``runtime`` asks for one.

    Args:
        module: a network in eval mode whose forward takes one float tensor.
        example: an input of the right shape on the CPU (dims in ``dynamic_dims`` may vary).
        dynamic_dims: input dimensions that vary between calls (0: the batch).
        runtime: ``auto``, ``torch`` or ``onnxruntime``.
        threads: ONNX Runtime's intra-op threads.
        what: the network's name in logs and errors.

    Raises:
        ConfigError: ``runtime`` is unknown, or ``onnxruntime`` was asked for and cannot run it
            (not installed, a parameter not on the CPU or not float32, the export failed, or
            its outputs differ from torch's).
    """
    if runtime not in RUNTIMES:
        raise ConfigError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")
    if runtime == "torch":
        return module
    floats = [t for t in module.state_dict().values() if t.is_floating_point()]
    if any(t.device.type != "cpu" or t.dtype != torch.float32 for t in floats):
        if runtime == "onnxruntime":
            raise ConfigError("the onnxruntime runtime runs float32 models on the CPU only")
        return module  # auto: a GPU or bf16 network stays on torch, as intended
    try:
        twin = _twin(module, example, tuple(dynamic_dims), threads)
    except ConfigError as exc:
        if runtime == "onnxruntime":
            raise
        log.warning("running on torch instead of ONNX Runtime", network=what, reason=str(exc))
        return module
    log.info("network runs on ONNX Runtime", network=what, threads=threads)
    return twin


def _twin(
    module: torch.nn.Module, example: torch.Tensor, dynamic_dims: tuple[int, ...], threads: int
) -> OnnxCpuModule:
    key = _fingerprint(module, example, dynamic_dims, threads)
    session, outputs = _session(key, module, example, dynamic_dims, threads)
    twin = OnnxCpuModule(session, outputs)
    with torch.inference_mode():
        expected = module(example)
    got = twin(example)
    expected_t = expected if isinstance(expected, tuple) else (expected,)
    got_t = got if isinstance(got, tuple) else (got,)
    for e, g in zip(expected_t, got_t):
        if e.shape != g.shape or not torch.allclose(e.float(), g, rtol=1e-3, atol=1e-3):
            raise ConfigError("ONNX Runtime's outputs differ from torch's on the example input")
    return twin


def _fingerprint(
    module: torch.nn.Module, example: torch.Tensor, dynamic_dims: tuple[int, ...], threads: int
) -> str:
    """The weights, calibration temperatures, class and input layout: equal keys, equal graphs."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().cpu().numpy().tobytes())
    for sub in module.modules():
        digest.update(f"{type(sub).__qualname__}:{getattr(sub, 'temperature', '')};".encode())
    digest.update(f"{tuple(example.shape)}{dynamic_dims}{threads}".encode())
    return digest.hexdigest()


_CACHE: dict[str, tuple[Any, int]] = {}


def _session(
    key: str,
    module: torch.nn.Module,
    example: torch.Tensor,
    dynamic_dims: tuple[int, ...],
    threads: int,
) -> tuple[Any, int]:
    """One session per distinct network in the process (workers and tests build engines often)."""
    if key in _CACHE:
        return _CACHE[key]
    ort = _onnxruntime()
    graph = _export(module, example, dynamic_dims)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Idle pool threads sleep instead of spinning: the worker shares its cores with detection.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    if len(_CACHE) >= _MAX_SESSIONS:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = (session, len(session.get_outputs()))
    return _CACHE[key]


@functools.cache
def _onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise ConfigError(
            f"onnxruntime is not installed ({exc}); reinstall emostream or set the runtime to torch"
        ) from None
    return onnxruntime


def _export(module: torch.nn.Module, example: torch.Tensor, dynamic_dims: tuple[int, ...]) -> bytes:
    buffer = io.BytesIO()
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's notes on tracing and its deprecation
        try:
            torch.onnx.export(
                module,
                (example,),
                buffer,  # type: ignore[arg-type]  # the exporter writes to any binary file
                dynamo=False,
                input_names=["x"],
                dynamic_axes={"x": {d: f"d{d}" for d in dynamic_dims}},
                opset_version=17,
            )
        except Exception as exc:  # noqa: BLE001 - the exporter raises many types: no twin
            raise ConfigError(f"could not export the network to ONNX: {exc}") from None
    return buffer.getvalue()
