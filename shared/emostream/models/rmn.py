"""Residual Masking Network (RMN): a residual backbone whose stage outputs U-Net masks refine.

The layout (module names, registration, aliased shortcuts) follows the official
``resmasking_dropout1`` so that its checkpoint loads with ``strict=True``. The same classes,
with other depths and widths, build the compact variants the project trains for CPUs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


def _conv3x3(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1, bias=False)


def _projection(in_ch: int, out_ch: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel_size=1, stride=stride, bias=False), nn.BatchNorm2d(out_ch)
    )


class BasicBlock(nn.Module):
    """The torchvision ResNet basic block (two 3x3 convs and a residual add)."""

    def __init__(
        self, in_ch: int, out_ch: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_ch, out_ch, stride)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(out_ch, out_ch)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


def _up_sampler(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(in_ch, out_ch, kernel_size=2, stride=2),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


class MaskingBlock(nn.Module):
    """U-Net of stride-1 residual blocks ending in a softmax over channels.

    Depth ``d`` gives ``2d`` blocks ``conv1..conv{2d}`` and ``d - 1`` up-samplers
    ``up_pool{d+1}..up_pool{2d-1}``. Each block's projection shortcut is also registered
    as ``downsample{k}`` (the same module), as the official code does, so both key sets
    appear in the state dict.
    """

    def __init__(self, channels: int, depth: int) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"mask depth must be >= 1, got {depth}")
        self.depth = depth
        enc = [(channels * 2**i, channels * 2 ** (i + 1)) for i in range(depth)]
        # Encoder blocks: downsample{k} is registered before conv{k}, as upstream.
        for k, (cin, cout) in enumerate(enc, start=1):
            self._add_block(k, cin, cout)
        self.pool = nn.MaxPool2d(2)
        # Decoder: up_pool{k} feeds conv{k}; its output is concatenated with conv{2d-k}'s.
        for k in range(depth + 1, 2 * depth):
            skip_ch = enc[2 * depth - k - 1][1]
            setattr(self, f"up_pool{k}", _up_sampler(skip_ch * 2, skip_ch))
            self._add_block(k, skip_ch * 2, skip_ch)
        self._add_block(2 * depth, channels * 2, channels)

    def _add_block(self, k: int, cin: int, cout: int) -> None:
        shortcut = _projection(cin, cout)
        setattr(self, f"downsample{k}", shortcut)
        setattr(self, f"conv{k}", BasicBlock(cin, cout, downsample=shortcut))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for k in range(1, self.depth + 1):
            if k > 1:
                x = self.pool(x)
            x = getattr(self, f"conv{k}")(x)
            skips.append(x)
        for k in range(self.depth + 1, 2 * self.depth):
            x = getattr(self, f"up_pool{k}")(x)
            x = torch.cat([x, skips[2 * self.depth - k - 1]], dim=1)
            x = getattr(self, f"conv{k}")(x)
        x = getattr(self, f"conv{2 * self.depth}")(x)
        return torch.softmax(x, dim=1)


@dataclass(frozen=True)
class RMNConfig:
    """Shape of a Residual Masking Network.

    Attributes:
        blocks: residual blocks per stage (ResNet34: 3, 4, 6, 3).
        widths: channels per stage (ResNet34: 64, 128, 256, 512).
        mask_depths: U-Net depth of each stage's mask; 0 disables that mask.
        stem: ``"imagenet"`` (7x7 stride-2 conv and 3x3 stride-2 max-pool, the official stem)
            or ``"small"`` (3x3 stride-1 conv and 2x2 max-pool, for 48-64 px inputs).
        num_classes: output logits.
        dropout: dropout before the classifier.
    """

    blocks: tuple[int, ...] = (3, 4, 6, 3)
    widths: tuple[int, ...] = (64, 128, 256, 512)
    mask_depths: tuple[int, ...] = (4, 3, 2, 1)
    stem: str = "imagenet"
    num_classes: int = 7
    dropout: float = 0.4
    in_channels: int = 3

    def to_dict(self) -> dict:
        return {
            "blocks": list(self.blocks),
            "widths": list(self.widths),
            "mask_depths": list(self.mask_depths),
            "stem": self.stem,
            "num_classes": self.num_classes,
            "dropout": self.dropout,
            "in_channels": self.in_channels,
        }

    @classmethod
    def from_dict(cls, data: dict) -> RMNConfig:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown RMN config keys: {sorted(unknown)}")
        values: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in data.items()
        }
        return cls(**values)


class ResMasking(nn.Module):
    """ResNet backbone with a masking block after every stage: ``x = x * (1 + mask(x))``."""

    def __init__(self, config: RMNConfig | None = None) -> None:
        super().__init__()
        config = config or RMNConfig()
        n_stages = len(config.blocks)
        if not (len(config.widths) == len(config.mask_depths) == n_stages):
            raise ValueError("blocks, widths and mask_depths must have one entry per stage")
        if config.stem not in ("imagenet", "small"):
            raise ValueError(f"stem must be 'imagenet' or 'small', got {config.stem!r}")
        self.config = config
        width0 = config.widths[0]
        if config.stem == "imagenet":
            self.conv1 = nn.Conv2d(config.in_channels, width0, 7, stride=2, padding=3, bias=False)
        else:
            self.conv1 = nn.Conv2d(config.in_channels, width0, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width0)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = (
            nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
            if config.stem == "imagenet"
            else nn.MaxPool2d(kernel_size=2)
        )
        in_ch = width0
        for i, (n_blocks, width) in enumerate(zip(config.blocks, config.widths), start=1):
            stride = 1 if i == 1 else 2
            setattr(self, f"layer{i}", self._make_layer(in_ch, width, n_blocks, stride))
            in_ch = width
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(in_ch, config.num_classes))
        for i, (width, depth) in enumerate(zip(config.widths, config.mask_depths), start=1):
            if depth > 0:
                setattr(self, f"mask{i}", MaskingBlock(width, depth))
        self._init_weights()

    @staticmethod
    def _make_layer(in_ch: int, out_ch: int, n_blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or in_ch != out_ch:
            downsample = _projection(in_ch, out_ch, stride)
        layers = [BasicBlock(in_ch, out_ch, stride, downsample)]
        layers += [BasicBlock(out_ch, out_ch) for _ in range(n_blocks - 1)]
        return nn.Sequential(*layers)

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(1, len(self.config.blocks) + 1):
            x = getattr(self, f"layer{i}")(x)
            mask = getattr(self, f"mask{i}", None)
            if mask is not None:
                x = x * (1 + mask(x))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)
