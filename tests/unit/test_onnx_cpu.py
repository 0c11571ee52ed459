"""The CPU networks on ONNX Runtime (``emostream.onnx_cpu``): the same outputs as torch, a
fallback to torch that says why, and a clear error when ONNX Runtime was asked for and cannot."""

import json

import cv2
import numpy as np
import pytest
import torch

from emostream import onnx_cpu
from emostream.errors import ConfigError
from emostream.inference import EmotionEngine
from emostream.models import DEFAULT_CHECKPOINT, load_checkpoint
from emostream.onnx_cpu import OnnxCpuModule, cpu_network
from emostream.vision.yunet_torch import TorchYuNetDetector
from emostream.vision_options import DetectorOptions, ModelOptions


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1)
    ).eval()


def test_twin_matches_torch_on_other_batch_sizes_and_torch_stays_torch():
    net = _net()
    twin = cpu_network(net, torch.rand(2, 3, 8, 8), (0,), "auto", 1, "toy")
    assert isinstance(twin, OnnxCpuModule)
    x = torch.rand(5, 3, 8, 8)
    with torch.inference_mode():
        assert torch.allclose(twin(x), net(x), atol=1e-5)
    assert cpu_network(net, torch.rand(2, 3, 8, 8), (0,), "torch", 1, "toy") is net


def test_auto_falls_back_to_torch_and_onnxruntime_says_why(monkeypatch):
    def missing():
        raise ConfigError("onnxruntime is not installed (No module named 'onnxruntime')")

    monkeypatch.setattr(onnx_cpu, "_onnxruntime", missing)
    monkeypatch.setattr(onnx_cpu, "_CACHE", {})
    net = _net()
    assert cpu_network(net, torch.rand(2, 3, 8, 8), (0,), "auto", 1, "toy") is net
    with pytest.raises(ConfigError, match="not installed"):
        cpu_network(net, torch.rand(2, 3, 8, 8), (0,), "onnxruntime", 1, "toy")
    with pytest.raises(ConfigError, match="runtime must be one of"):
        cpu_network(net, torch.rand(2, 3, 8, 8), (0,), "tensorrt", 1, "toy")


def test_a_twin_whose_outputs_differ_is_refused(monkeypatch):
    real = OnnxCpuModule.__call__
    monkeypatch.setattr(OnnxCpuModule, "__call__", lambda self, x: real(self, x) + 1)
    net = _net()
    with pytest.raises(ConfigError, match="differ"):
        cpu_network(net, torch.rand(2, 3, 8, 8), (0,), "onnxruntime", 1, "toy")
    assert cpu_network(net, torch.rand(2, 3, 8, 8), (0,), "auto", 1, "toy") is net


def test_only_float32_on_the_cpu_goes_to_onnxruntime():
    with pytest.raises(ConfigError, match="float32"):
        cpu_network(_net().to(torch.bfloat16), torch.rand(2, 3, 8, 8), (0,), "onnxruntime", 1, "x")
    model = load_checkpoint(DEFAULT_CHECKPOINT)
    with pytest.raises(ConfigError, match="float32 models on the CPU"):
        EmotionEngine(model, "cpu", "bf16", runtime="onnxruntime")
    assert EmotionEngine(model, "cpu", "bf16", runtime="auto")._forward is not None


def test_classifier_probabilities_agree_with_torch(astronaut_bgr):
    model = load_checkpoint(DEFAULT_CHECKPOINT)
    grey = cv2.cvtColor(astronaut_bgr, cv2.COLOR_BGR2GRAY)
    crops = [grey[30 + d : 230 + d, 150 + d : 350 + d] for d in range(0, 30, 6)]
    ort = EmotionEngine(model, "cpu", "fp32", flip_tta=True, runtime="onnxruntime")
    eager = EmotionEngine(model, "cpu", "fp32", flip_tta=True, runtime="torch")
    assert isinstance(ort._forward, OnnxCpuModule) and eager._forward is eager.model
    np.testing.assert_allclose(ort.classify(crops), eager.classify(crops), atol=1e-4)


def test_yunet_finds_the_same_faces_on_both_runtimes(astronaut_bgr):
    frames = [astronaut_bgr, cv2.resize(astronaut_bgr, (256, 256))[40:200, :]]
    windows = [cv2.resize(astronaut_bgr[0:256, 120:376], (64, 64))] * 3
    ort = TorchYuNetDetector(runtime="onnxruntime")
    eager = TorchYuNetDetector(runtime="torch")
    assert isinstance(ort._forward, OnnxCpuModule)
    for images in (frames, windows):
        got, expected = ort.detect_raw(images), eager.detect_raw(images)
        assert [len(r) for r in got] == [len(r) for r in expected]
        assert all(len(r) for r in got)  # the photo's face is found everywhere
        for a, b in zip(got, expected):
            np.testing.assert_allclose(a, b, atol=0.05)


def test_settings_default_to_auto():
    assert ModelOptions().runtime == "auto" and DetectorOptions().runtime == "auto"


def test_bench_runtime_reports_both_runtimes_on_the_same_inputs(capsys):
    from emostream.cli.main import main

    argv = ["bench", "runtime", "--json", "--batch-sizes", "1", "--windows", "2", "--repeats", "1"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert [r["faces"] for r in result["classifier"]] == [1]
    assert [r["input"] for r in result["yunet"]] == ["frame 480 x 288", "2 window(s) 64 x 64"]
    for row in result["classifier"] + result["yunet"]:
        assert row["torch_ms"] > 0 and row["onnxruntime_ms"] > 0
        assert row["max_abs_diff"] < 0.05
