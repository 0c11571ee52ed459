"""YuNet's network in plain PyTorch: the layers of OpenCV Zoo's face detector, batch-first.

The ONNX export (``face_detection_yunet_2023mar.onnx`` and later) has batch norms folded into the
convolutions; this module has the same folded layout, so its state dict is the ONNX file's
initialisers renamed (``scripts/convert_yunet_onnx.py``). Parameter names follow the original
training code (``backbone.model0`` ... ``bbox_head.multi_level_kps.2``) so that a key mismatch
points at the layer that differs.

Input: N x 3 x H x W float, BGR in 0..255 (no mean, no scaling), H and W multiples of 32
(``FaceDetectorYN`` pads with zeros to that; so does ``emostream.vision.yunet_torch``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

STRIDES = (8, 16, 32)
INPUT_DIVISOR = 32  # the deepest feature map is 1/32 of the padded input
# Head outputs per anchor, in the merged head's channel order: class, objectness, box, landmarks
HEAD_SPLIT = (1, 1, 4, 10)
HEAD_CHANNELS = sum(HEAD_SPLIT)


class DepthwiseUnit(nn.Module):
    """1x1 conv, then a depthwise 3x3 conv (batch norm folded in), then an optional ReLU."""

    def __init__(self, in_ch: int, out_ch: int, relu: bool = True) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, out_ch, 1)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, groups=out_ch)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv2(self.conv1(x))
        return F.relu(x) if self.relu else x


class StemBlock(nn.Module):
    """A strided 3x3 conv (3 -> 16 channels, ReLU) and one depthwise unit."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, stride=2, padding=1)
        self.conv2 = DepthwiseUnit(16, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.relu(self.conv1(x)))


class TwoUnitBlock(nn.Module):
    def __init__(self, in_ch: int, mid_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv1 = DepthwiseUnit(in_ch, mid_ch)
        self.conv2 = DepthwiseUnit(mid_ch, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x))


class Backbone(nn.Module):
    """Feature maps at strides 8, 16 and 32 (64 channels each)."""

    def __init__(self) -> None:
        super().__init__()
        self.model0 = StemBlock()
        self.model1 = TwoUnitBlock(16, 16, 32)
        self.model2 = TwoUnitBlock(32, 32, 64)
        self.model3 = TwoUnitBlock(64, 64, 64)
        self.model4 = TwoUnitBlock(64, 64, 64)
        self.model5 = TwoUnitBlock(64, 64, 64)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = F.max_pool2d(self.model0(x), 2)
        x = F.max_pool2d(self.model2(self.model1(x)), 2)
        s8 = self.model3(x)
        s16 = self.model4(F.max_pool2d(s8, 2))
        s32 = self.model5(F.max_pool2d(s16, 2))
        return s8, s16, s32


class Neck(nn.Module):
    """Top-down path: each level adds the (nearest-upsampled) level above before its unit."""

    def __init__(self) -> None:
        super().__init__()
        self.lateral_convs = nn.ModuleList(DepthwiseUnit(64, 64) for _ in STRIDES)

    def forward(
        self, s8: torch.Tensor, s16: torch.Tensor, s32: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        p32 = self.lateral_convs[2](s32)
        p16 = self.lateral_convs[1](s16 + F.interpolate(p32, scale_factor=2.0, mode="nearest"))
        p8 = self.lateral_convs[0](s8 + F.interpolate(p16, scale_factor=2.0, mode="nearest"))
        return p8, p16, p32


class Head(nn.Module):
    """Per level: class and objectness logits, box offsets (4) and five landmarks (10)."""

    def __init__(self) -> None:
        super().__init__()
        levels = range(len(STRIDES))
        self.multi_level_cls = nn.ModuleList(DepthwiseUnit(64, 1, relu=False) for _ in levels)
        self.multi_level_bbox = nn.ModuleList(DepthwiseUnit(64, 4, relu=False) for _ in levels)
        self.multi_level_obj = nn.ModuleList(DepthwiseUnit(64, 1, relu=False) for _ in levels)
        self.multi_level_kps = nn.ModuleList(DepthwiseUnit(64, 10, relu=False) for _ in levels)

    def merged(self) -> list[DepthwiseUnit]:
        """The four heads of each level as one unit: their 1x1 convs stacked into one (64 -> 16
        channels: class, objectness, box, landmarks) and their depthwise convs side by side.

        The same arithmetic in 6 convolutions a pass instead of 24: on a CPU most of a small
        input's time is the fixed cost of each call, so this is a quarter less for a window.
        """
        levels = []
        for i in range(len(STRIDES)):
            parts: list[DepthwiseUnit] = [
                self.multi_level_cls[i],  # type: ignore[list-item]
                self.multi_level_obj[i],  # type: ignore[list-item]
                self.multi_level_bbox[i],  # type: ignore[list-item]
                self.multi_level_kps[i],  # type: ignore[list-item]
            ]
            like = parts[0].conv1.weight
            unit = DepthwiseUnit(64, HEAD_CHANNELS, relu=False).to(like.device, like.dtype)
            with torch.no_grad():
                for mine, theirs in (
                    (unit.conv1, [p.conv1 for p in parts]),
                    (unit.conv2, [p.conv2 for p in parts]),
                ):
                    mine.weight.copy_(torch.cat([c.weight for c in theirs]))
                    mine.bias.copy_(torch.cat([c.bias for c in theirs]))  # type: ignore[union-attr,misc]
            if like.is_contiguous(memory_format=torch.channels_last):
                unit = unit.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
            levels.append(unit.eval().requires_grad_(False))  # inference only
        return levels


def _flat(x: torch.Tensor) -> torch.Tensor:
    """N x C x H x W -> N x (H*W) x C, row-major over the grid like the ONNX outputs."""
    n, c = x.shape[:2]
    return x.permute(0, 2, 3, 1).reshape(n, -1, c)


class YuNet(nn.Module):
    """The network; ``forward`` returns per-anchor outputs of all levels, stride 8 first.

    Returns ``(cls, obj, bbox, kps)``: N x A probabilities (sigmoid applied), N x A,
    N x A x 4 raw box offsets, N x A x 10 raw landmark offsets, where A sums H/s * W/s over
    strides 8, 16, 32 in that order (the order OpenCV's post-processing walks them).
    """

    def __init__(self) -> None:
        super().__init__()
        self.backbone = Backbone()
        self.neck = Neck()
        self.bbox_head = Head()
        # Set by merge_heads() once the weights are on their device: a plain list, not
        # submodules, so the state dict keeps the ONNX file's layout.
        self.merged_head: list[DepthwiseUnit] | None = None

    def merge_heads(self) -> YuNet:
        """Run the heads as one unit per level from now on (see ``Head.merged``); call after
        loading the weights and moving the model, for inference only."""
        self.merged_head = self.bbox_head.merged()
        return self

    def forward(
        self,
        x: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        if x.shape[-1] % INPUT_DIVISOR or x.shape[-2] % INPUT_DIVISOR:
            raise ValueError(
                f"YuNet input {tuple(x.shape[-2:])} must be a multiple of "
                f"{INPUT_DIVISOR} in height and width (pad with zeros)"
            )
        feats = self.neck(*self.backbone(x))
        if self.merged_head is not None:
            out = torch.cat([_flat(unit(f)) for unit, f in zip(self.merged_head, feats)], 1)
            cls, obj, bbox, kps = out.split(HEAD_SPLIT, dim=2)
            return torch.sigmoid(cls[..., 0]), torch.sigmoid(obj[..., 0]), bbox, kps
        head = self.bbox_head
        cls = torch.cat([_flat(head.multi_level_cls[i](f)) for i, f in enumerate(feats)], 1)
        obj = torch.cat([_flat(head.multi_level_obj[i](f)) for i, f in enumerate(feats)], 1)
        bbox = torch.cat([_flat(head.multi_level_bbox[i](f)) for i, f in enumerate(feats)], 1)
        kps = torch.cat([_flat(head.multi_level_kps[i](f)) for i, f in enumerate(feats)], 1)
        return torch.sigmoid(cls[..., 0]), torch.sigmoid(obj[..., 0]), bbox, kps
