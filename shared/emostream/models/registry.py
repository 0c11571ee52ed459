"""Registered model architectures, each with the preprocessing its weights expect."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from torch import nn

from emostream.labels import EMOTIONS
from emostream.models.rmn import ResMasking, RMNConfig

__all__ = ["EMOTIONS", "ModelSpec", "Preprocessing", "get_spec", "list_specs", "register"]


@dataclass(frozen=True)
class Preprocessing:
    """How a face crop becomes the model's input tensor.

    Attributes:
        input_size: square side in pixels the crop is resized to.
        grayscale: convert to grey and replicate to 3 channels (FER2013 is grey).
        mean: per-channel mean subtracted after scaling to [0, 1]; None for no normalisation.
        std: per-channel std divided after subtracting the mean.
        interpolation: resize interpolation ("bilinear" or "area").
        labels: class names in logit order.
        blur_sigma: Gaussian blur (in input pixels) applied inside the model before the network,
            so sharp inputs match training data that was itself blurred; 0 disables it.
    """

    input_size: int = 224
    grayscale: bool = True
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    interpolation: str = "bilinear"
    labels: tuple[str, ...] = EMOTIONS
    blur_sigma: float = 0.0

    def to_dict(self) -> dict:
        data = asdict(self)
        data["labels"] = list(self.labels)
        for key in ("mean", "std"):
            if data[key] is not None:
                data[key] = list(data[key])
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Preprocessing:
        values: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in data.items()
        }
        return cls(**values)


@dataclass(frozen=True)
class ModelSpec:
    """A registered architecture: how to build it and how to feed it."""

    name: str
    description: str
    config: RMNConfig
    preprocessing: Preprocessing = field(default_factory=Preprocessing)

    def build(self) -> nn.Module:
        return ResMasking(self.config)


_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def get_spec(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise KeyError(f"unknown model {name!r}; registered models: {known}") from None


def list_specs() -> list[ModelSpec]:
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]


register(
    ModelSpec(
        name="resmasking_dropout1",
        description="Official RMN-34 (ResNet34 + masking blocks 4/3/2/1), 224 px, 74.14% FER2013",
        config=RMNConfig(),
        preprocessing=Preprocessing(input_size=224),
    )
)


def _cpu_rmn(name: str, description: str, blocks: tuple[int, ...]) -> ModelSpec:
    """The 48 px CPU family: widths 24-192, masks on stages 3-4, dropout 0.3; only depth varies."""
    config = RMNConfig(
        blocks=blocks, widths=(24, 48, 96, 192), mask_depths=(0, 0, 1, 1), stem="small", dropout=0.3
    )
    return ModelSpec(name, description, config, Preprocessing(input_size=48))


register(
    _cpu_rmn(
        "rmn_compact",
        "Compact RMN for CPUs: 1 block per stage, widths 24-192, masks on stages 3-4",
        (1, 1, 1, 1),
    )
)
register(
    _cpu_rmn(
        "rmn_compact_deep3",
        "rmn_compact with a second block in stage 3 (the block a deep teacher leans on most), "
        "widths 24-192, masks on stages 3-4, 48 px; 93-95% of rmn_compact's faces/s",
        (1, 1, 2, 1),
    )
)
register(
    _cpu_rmn(
        "rmn_medium",
        "Medium RMN: 2 blocks per stage, widths 24-192, masks on stages 3-4, 48 px "
        "(5.5 M params, 10.5 MiB in fp16; 82-84% of rmn_compact's faces/s at batch 64)",
        (2, 2, 2, 2),
    )
)
register(
    ModelSpec(
        name="rmn_small",
        description="Small RMN: 2 blocks per stage, widths 32-256, masks 2/1/1/1, 64 px",
        config=RMNConfig(
            blocks=(2, 2, 2, 2),
            widths=(32, 64, 128, 256),
            mask_depths=(2, 1, 1, 1),
            stem="small",
        ),
        preprocessing=Preprocessing(input_size=64),
    )
)
