"""Load and save emotion-model checkpoints (the official RMN format and the project's own)."""

from __future__ import annotations

import math
import pickle
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from emostream.models.registry import Preprocessing, get_spec
from emostream.models.rmn import ResMasking, RMNConfig

FORMAT = "emostream.rmn/1"
WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_CHECKPOINT = WEIGHTS_DIR / "rmn_compact_fer2013.pt"


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt or does not match its architecture."""


class EmotionClassifier(nn.Module):
    """A face-emotion network with the preprocessing its weights expect.

    ``forward`` takes N x 3 x H x W floats in [0, 1] (H = W = ``preprocessing.input_size``)
    and returns N x 7 logits in FER2013 order. Normalisation, if any, happens inside.
    """

    def __init__(
        self,
        net: nn.Module,
        preprocessing: Preprocessing,
        name: str,
        version: str = "untrained",
        trained: bool = False,
    ) -> None:
        super().__init__()
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
            self._blur = None
        else:
            sigma = preprocessing.blur_sigma
            radius = max(1, math.ceil(3 * sigma))
            t = torch.arange(-radius, radius + 1, dtype=torch.float32)
            k = torch.exp(-(t**2) / (2 * sigma**2))
            self.register_buffer("_blur", (k / k.sum()).view(1, 1, 1, -1), persistent=False)

    def blur(self, x: torch.Tensor) -> torch.Tensor:
        """Separable Gaussian blur, reflect-padded, one channel at a time."""
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
        return self.net(x)


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

        safe = [np.core.multiarray.scalar, np.dtype, type(np.dtype("float64"))]
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
        net = ResMasking(config)
        _load_strict(net, raw["state_dict"], path, raw.get("arch", "custom"))
        meta = raw.get("meta", {})
        model = EmotionClassifier(
            net,
            preprocessing,
            name=raw.get("arch", "custom"),
            version=str(meta.get("version", "unknown")),
            trained=bool(meta.get("trained", True)),
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
