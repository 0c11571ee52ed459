#!/usr/bin/env python
"""Convert YuNet's ONNX file into the state dict that ``emostream.vision.yunet_net.YuNet`` loads.

Run once by a maintainer; the result ships in the package
(``shared/emostream/vision/weights/yunet.pt``), so neither ``onnx`` nor the ONNX file is needed at
run time. ``onnx`` is only needed here:

    .venv/bin/pip install onnx
    .venv/bin/python scripts/convert_yunet_onnx.py \
        ../shared/models/face_detection_yunet_2026may.onnx shared/emostream/vision/weights/yunet.pt

How names are mapped: the export keeps the training code's names for the 1x1 convolutions
(``backbone.model1.conv1.conv1.weight``) but renames the depthwise 3x3 convolutions it folded batch
norms into (``423``, ``424``). Each such convolution reads the output of its unit's 1x1
convolution, so it is that unit's ``conv2``; the first convolution reads the image and is the
stem's ``conv1``. Every Conv node must map to one module with the same shape, stride, padding and
groups, every module must be filled, and the converted network must reproduce OpenCV DNN's
outputs on random input; otherwise the script stops with the reason.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from emostream.vision.yunet_net import YuNet

OUTPUT_NAMES = [
    "cls_8",
    "cls_16",
    "cls_32",
    "obj_8",
    "obj_16",
    "obj_32",
    "bbox_8",
    "bbox_16",
    "bbox_32",
    "kps_8",
    "kps_16",
    "kps_32",
]


def onnx_state_dict(onnx_path: Path) -> tuple[dict[str, torch.Tensor], dict[str, dict]]:
    """Conv weights and biases keyed by module name, and each conv's attributes."""
    import onnx  # conversion-time only: never a run-time dependency
    from onnx import numpy_helper

    graph = onnx.load(str(onnx_path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    conv_by_output: dict[str, str] = {}  # conv output tensor -> module name
    state: dict[str, torch.Tensor] = {}
    attrs: dict[str, dict] = {}
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        weight, bias = node.input[1], node.input[2]
        if weight.endswith(".weight"):
            name = weight.removesuffix(".weight")
        elif node.input[0] == graph.input[0].name:
            name = "backbone.model0.conv1"
        elif node.input[0] in conv_by_output and conv_by_output[node.input[0]].endswith(".conv1"):
            name = conv_by_output[node.input[0]].removesuffix(".conv1") + ".conv2"
        else:
            raise SystemExit(
                f"cannot name the Conv node reading {node.input[0]!r} (weight {weight!r})"
            )
        if name in state:
            raise SystemExit(f"two Conv nodes map to {name}")
        conv_by_output[node.output[0]] = name
        state[f"{name}.weight"] = torch.from_numpy(inits[weight].copy())
        state[f"{name}.bias"] = torch.from_numpy(inits[bias].copy())
        attrs[name] = {
            a.name: list(onnx.helper.get_attribute_value(a)) if a.ints else a.i
            for a in node.attribute
        }
    return state, attrs


def check_layout(model: YuNet, state: dict[str, torch.Tensor], attrs: dict[str, dict]) -> None:
    """Shapes, strides, padding and groups of every conv agree; no key missing or left over."""
    expected = model.state_dict()
    missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or extra:
        raise SystemExit(f"key mismatch: missing {missing}, unexpected {extra}")
    for key, value in expected.items():
        if value.shape != state[key].shape:
            raise SystemExit(f"{key}: model {tuple(value.shape)} vs ONNX {tuple(state[key].shape)}")
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Conv2d):
            a = attrs[name]
            got = (a["strides"], a["pads"][:2], a["group"])
            want = (list(module.stride), list(module.padding), module.groups)
            if got != want:
                raise SystemExit(f"{name}: ONNX strides/pads/group {got} vs model {want}")


def check_outputs(model: YuNet, onnx_path: Path, height: int = 96, width: int = 128) -> float:
    """Largest absolute difference from OpenCV DNN's outputs on one random image."""
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 255, size=(1, 3, height, width)).astype(np.float32)
    net = cv2.dnn.readNet(str(onnx_path))
    net.setInput(image)
    ref = dict(zip(OUTPUT_NAMES, net.forward(OUTPUT_NAMES)))
    with torch.inference_mode():
        cls, obj, bbox, kps = model(torch.from_numpy(image))
    ours = {"cls": cls[..., None], "obj": obj[..., None], "bbox": bbox, "kps": kps}
    worst = 0.0
    for kind, tensor in ours.items():
        want = np.concatenate(
            [ref[f"{kind}_{s}"].reshape(1, -1, tensor.shape[-1]) for s in (8, 16, 32)], axis=1
        )
        worst = max(worst, float(np.abs(tensor.numpy() - want).max()))
    return worst


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("onnx", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--tolerance", type=float, default=1e-3)
    args = p.parse_args(argv)
    model = YuNet().eval()
    state, attrs = onnx_state_dict(args.onnx)
    check_layout(model, state, attrs)
    model.load_state_dict(state, strict=True)
    worst = check_outputs(model, args.onnx)
    if worst > args.tolerance:
        raise SystemExit(
            f"converted network differs from OpenCV DNN by {worst:.2e} "
            f"(> {args.tolerance}); not written"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.contiguous() for k, v in model.state_dict().items()}, args.out)
    digest = hashlib.sha256(args.onnx.read_bytes()).hexdigest()
    print(
        f"wrote {args.out} ({args.out.stat().st_size} bytes) from {args.onnx.name} "
        f"(sha256 {digest}); max |diff| vs OpenCV DNN {worst:.2e}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
