"""Load and save emotion-model checkpoints (the official RMN format and the project's own)."""

from __future__ import annotations

import math
import pickle
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from emostream.errors import CheckpointError
from emostream.models.registry import Preprocessing, get_spec
from emostream.models.rmn import ResMasking, RMNConfig

FORMAT = "emostream.rmn/1"
WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_CHECKPOINT = WEIGHTS_DIR / "rmn_fer2013_default.pt"


class EmotionClassifier(nn.Module):
    """A face-emotion network with the preprocessing its weights expect.

    ``forward`` takes N x 3 x H x W floats in [0, 1] (H = W = ``preprocessing.input_size``)
    and returns N x 7 logits in FER2013 order. Normalisation, if any, happens inside, and the
    logits are divided by the checkpoint's calibration ``temperature`` (1.0 when it has none), so
    their softmax is a calibrated probability.
    """

    def __init__(
        self,
        net: nn.Module,
        preprocessing: Preprocessing,
        name: str,
        version: str = "untrained",
        trained: bool = False,
        temperature: float = 1.0,
    ) -> None:
        super().__init__()
        if not temperature > 0 or not math.isfinite(temperature):
            raise CheckpointError(f"temperature must be a positive number, got {temperature!r}")
        self.temperature = float(temperature)
        self.net = net
        self.preprocessing = preprocessing
        self.name = name
        self.version = version
        self.trained = trained
        if preprocessing.mean is not None:
            mean = torch.tensor(preprocessing.mean).view(1, -1, 1, 1)
            std = torch.tensor(preprocessing.std or (1.0,) * len(preprocessing.mean)).view(
                1, -1, 1, 1
            )
            self.register_buffer("_mean", mean, persistent=False)
            self.register_buffer("_std", std, persistent=False)
        else:
            self._mean = None
            self._std = None
        if preprocessing.blur_sigma <= 0:
            self._blur: torch.Tensor | None = None
        else:
            sigma = preprocessing.blur_sigma
            radius = max(1, math.ceil(3 * sigma))
            t = torch.arange(-radius, radius + 1, dtype=torch.float32)
            k = torch.exp(-(t**2) / (2 * sigma**2))
            self.register_buffer("_blur", (k / k.sum()).view(1, 1, 1, -1), persistent=False)

    def blur(self, x: torch.Tensor) -> torch.Tensor:
        """Separable Gaussian blur, reflect-padded, one channel at a time."""
        if self._blur is None:  # blur_sigma <= 0: no blur configured
            return x
        n, c, h, w = x.shape
        k = self._blur.to(dtype=x.dtype)
        r = k.shape[-1] // 2
        y = x.reshape(n * c, 1, h, w)
        y = F.conv2d(F.pad(y, (r, r, 0, 0), mode="replicate"), k)
        y = F.conv2d(F.pad(y, (0, 0, r, r), mode="replicate"), k.transpose(-1, -2))
        return y.reshape(n, c, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._blur is not None:
            x = self.blur(x)
        if self._mean is not None:
            x = (x - self._mean) / self._std
        logits = self.net(x)
        return logits / self.temperature if self.temperature != 1.0 else logits


class EnsembleClassifier(nn.Module):
    """Several emotion models as one: the log of their mean softmax.

    ``softmax(forward(x))`` is the mean of the members' (calibrated) probabilities, the fusion the
    RMN paper's ensemble uses, so the worker, ``eval`` and ``bench`` run an ensemble exactly like a
    single model. Members must share their input preprocessing.
    """

    def __init__(self, members: list[EmotionClassifier]) -> None:
        super().__init__()
        if len(members) < 2:
            raise CheckpointError("an ensemble needs at least two checkpoints")
        first = members[0].preprocessing
        for m in members[1:]:
            if m.preprocessing != first:
                raise CheckpointError(
                    f"ensemble members need the same preprocessing: {members[0].name} takes "
                    f"{first.input_size} px, {m.name} takes {m.preprocessing.input_size} px"
                )
        self.members = nn.ModuleList(members)
        self.preprocessing = first
        self.name = "ensemble(" + "+".join(m.name for m in members) + ")"
        self.version = "+".join(m.version for m in members)
        self.trained = all(m.trained for m in members)
        self.temperature = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = torch.stack([torch.softmax(m(x).float(), dim=1) for m in self.members]).mean(0)
        return torch.log(probs.clamp_min(1e-12)).to(x.dtype)


def load_models(
    paths: str | Path | list, device: str | torch.device = "cpu"
) -> EmotionClassifier | EnsembleClassifier:
    """One checkpoint, or an :class:`EnsembleClassifier` of several.

    ``paths`` is a path, a list of paths, or one string of paths separated by commas (how the
    ``EMOSTREAM_MODEL__CHECKPOINT`` setting selects an ensemble).
    """
    if isinstance(paths, (str, Path)):
        paths = [p.strip() for p in str(paths).split(",") if p.strip()]
    if not paths:
        raise CheckpointError("no checkpoint given")
    models = [load_checkpoint(p, device) for p in paths]
    return models[0] if len(models) == 1 else EnsembleClassifier(models).eval()


def _torch_load(path: Path) -> Any:
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "numpy" not in str(exc):
            raise CheckpointError(
                f"{path} is not a weights-only PyTorch checkpoint ({exc.__class__.__name__}); "
                "refusing to unpickle arbitrary code"
            ) from exc
        # The official training script stores numpy scalars (best accuracy) next to "net".
        import numpy as np

        # The pickles name np.core.multiarray.scalar; numpy 2's stubs no longer list np.core.
        scalar = np.core.multiarray.scalar  # type: ignore[attr-defined]
        safe = [scalar, np.dtype, type(np.dtype("float64"))]
        with torch.serialization.safe_globals(safe):
            try:
                return torch.load(path, map_location="cpu", weights_only=True)
            except Exception as exc2:  # noqa: BLE001 - re-raised with context
                raise CheckpointError(f"cannot read {path} weights-only: {exc2}") from exc2
    except (RuntimeError, EOFError, OSError) as exc:
        raise CheckpointError(f"{path} is corrupt or not a PyTorch checkpoint: {exc}") from exc


def _load_strict(net: nn.Module, state: dict, path: Path, arch: str) -> None:
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    try:
        result = net.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        first = str(exc).splitlines()[1:3]
        raise CheckpointError(
            f"{path} does not match architecture {arch!r}: {' '.join(s.strip() for s in first)}. "
            "Pass the checkpoint's own architecture, or re-export it with `emostream train`."
        ) from exc
    if result.missing_keys or result.unexpected_keys:
        missing = result.missing_keys[:5]
        unexpected = result.unexpected_keys[:5]
        raise CheckpointError(
            f"{path} does not match architecture {arch!r}: "
            f"{len(result.missing_keys)} missing keys (e.g. {missing}), "
            f"{len(result.unexpected_keys)} unexpected keys (e.g. {unexpected}). "
            "Pass the checkpoint's own architecture, or re-export it with `emostream train`."
        )


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> EmotionClassifier:
    """Load an emotion model in eval mode.

    Args:
        path: the official RMN checkpoint (a dict whose ``"net"`` is the
            ``resmasking_dropout1`` state dict) or a checkpoint written by ``emostream train``.
        device: torch device to place the model on.

    Returns:
        An :class:`EmotionClassifier` whose forward maps N x 3 x H x W in [0, 1] to N x 7 logits.

    Raises:
        CheckpointError: the file is missing, corrupt, not weights-only, or its keys do not
            match the architecture.
    """
    path = Path(path)
    raw = _torch_load(path)
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path}: expected a dict checkpoint, got {type(raw).__name__}")
    if raw.get("format") == FORMAT:
        config = RMNConfig.from_dict(raw["config"])
        preprocessing = Preprocessing.from_dict(raw["preprocessing"])
        net: nn.Module = ResMasking(config)
        _load_strict(net, raw["state_dict"], path, raw.get("arch", "custom"))
        meta = raw.get("meta", {})
        model = EmotionClassifier(
            net,
            preprocessing,
            name=raw.get("arch", "custom"),
            version=str(meta.get("version", "unknown")),
            trained=bool(meta.get("trained", True)),
            temperature=float(raw.get("temperature", 1.0)),
        )
    elif "net" in raw and isinstance(raw["net"], dict):
        spec = get_spec("resmasking_dropout1")
        net = spec.build()
        _load_strict(net, raw["net"], path, spec.name)
        model = EmotionClassifier(
            net, spec.preprocessing, name=spec.name, version="official", trained=True
        )
    else:
        keys = sorted(raw)[:8]
        raise CheckpointError(
            f"{path}: unknown checkpoint layout (top-level keys {keys}); expected the official "
            f"RMN format with a 'net' state dict or an {FORMAT!r} checkpoint"
        )
    return model.to(device).eval()


def save_checkpoint(
    path: str | Path,
    net: ResMasking,
    arch: str,
    preprocessing: Preprocessing,
    meta: dict | None = None,
    half: bool = False,
    temperature: float = 1.0,
) -> Path:
    """Write a project checkpoint that records architecture and preprocessing.

    ``half`` stores floating weights as fp16 (half the size; they load back as fp32).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        k: (v.detach().half() if half and v.is_floating_point() else v.detach()).cpu().clone()
        for k, v in net.state_dict().items()
    }
    payload = {
        "format": FORMAT,
        "arch": arch,
        "config": net.config.to_dict(),
        "preprocessing": preprocessing.to_dict(),
        "state_dict": state,
        "meta": meta or {},
        "temperature": float(temperature),
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def untrained_model(arch: str = "rmn_compact", seed: int = 0) -> EmotionClassifier:
    """A randomly initialised model, flagged as untrained everywhere it is reported."""
    spec = get_spec(arch)
    torch.manual_seed(seed)
    return EmotionClassifier(
        spec.build(), spec.preprocessing, name=spec.name, version="untrained", trained=False
    ).eval()


def set_temperature(path: str | Path, temperature: float, out: str | Path | None = None) -> Path:
    """Store a calibration temperature in a project checkpoint (in place, or to ``out``)."""
    path = Path(path)
    raw = _torch_load(path)
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise CheckpointError(
            f"{path}: only {FORMAT!r} checkpoints carry a temperature; "
            "re-export it with `emostream train`"
        )
    if not temperature > 0 or not math.isfinite(temperature):
        raise CheckpointError(f"temperature must be a positive number, got {temperature!r}")
    raw["temperature"] = float(temperature)
    raw.setdefault("meta", {})["temperature"] = float(temperature)
    target = Path(out) if out else path
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".tmp")
    torch.save(raw, tmp)
    tmp.replace(target)
    return target
