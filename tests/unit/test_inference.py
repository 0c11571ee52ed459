import numpy as np
import pytest
import torch

from emostream.errors import ConfigError
from emostream.inference import EmotionEngine, load_model
from emostream.models import untrained_model
from emostream.vision_options import ModelOptions


@pytest.fixture(scope="module")
def crops():
    rng = np.random.default_rng(0)
    return [
        rng.integers(0, 255, (int(s), int(s)), dtype=np.uint8) for s in rng.integers(20, 120, 10)
    ]


def test_probabilities_and_batching_agree(crops):
    big = EmotionEngine(untrained_model(seed=1), device="cpu", max_batch=64).classify(crops)
    small = EmotionEngine(untrained_model(seed=1), device="cpu", max_batch=3).classify(crops)
    assert big.shape == (10, 7)
    assert np.allclose(big.sum(1), 1.0)
    assert np.allclose(big, small, atol=1e-5)


def test_preprocess_follows_model_config(crops):
    engine = EmotionEngine(untrained_model(), device="cpu")
    x = engine.preprocess(crops[:2])
    size = engine.preprocessing.input_size
    assert x.shape == (2, 3, size, size) and x.dtype == torch.float32
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert torch.equal(x[:, 0], x[:, 1])  # grey replicated


def test_bf16_close_to_fp32(crops):
    ref = EmotionEngine(untrained_model(seed=2), device="cpu").classify(crops)
    bf16 = EmotionEngine(untrained_model(seed=2), device="cpu", dtype="bf16").classify(crops)
    assert np.abs(ref - bf16).max() < 0.05


def test_empty_input():
    assert EmotionEngine(untrained_model(), device="cpu").classify([]).shape == (0, 7)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only errors")
def test_gpu_only_settings_are_clear_errors():
    with pytest.raises(ConfigError, match="fp16 needs a CUDA"):
        EmotionEngine(untrained_model(), device="cpu", dtype="fp16")
    with pytest.raises(ConfigError, match="no CUDA device"):
        EmotionEngine(untrained_model(), device="cuda")


def test_missing_checkpoint_is_an_error_and_untrained_is_flagged(tmp_path):
    from emostream.models import CheckpointError

    with pytest.raises(CheckpointError):
        load_model(ModelOptions(checkpoint=str(tmp_path / "nope.pt")))
    model = untrained_model()
    assert model.trained is False and model.version == "untrained"


def test_auto_dtype_is_bf16_only_on_cpus_with_native_bf16(monkeypatch):
    from emostream import inference

    cpu = torch.device("cpu")
    monkeypatch.setattr(inference, "cpu_has_native_bf16", lambda: True)
    assert inference.pick_dtype("auto", cpu) == torch.bfloat16
    monkeypatch.setattr(inference, "cpu_has_native_bf16", lambda: False)
    assert inference.pick_dtype("auto", cpu) == torch.float32
    assert inference.pick_dtype("fp32", cpu) == torch.float32  # explicit choices are kept
    assert inference.pick_dtype("auto", torch.device("cuda")) == torch.float16


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_path_matches_cpu(crops):
    cpu = EmotionEngine(untrained_model(seed=3), device="cpu").classify(crops)
    gpu = EmotionEngine(untrained_model(seed=3), device="cuda", dtype="fp32", max_batch=3).classify(
        crops
    )
    assert np.abs(cpu - gpu).max() < 1e-3


def test_flip_tta_averages_each_face_with_its_mirror(crops):
    plain = EmotionEngine(untrained_model(seed=4), device="cpu")
    flipped = plain.classify([c[:, ::-1].copy() for c in crops])
    tta = EmotionEngine(untrained_model(seed=4), device="cpu", flip_tta=True).classify(crops)
    assert np.allclose(tta, (plain.classify(crops) + flipped) / 2, atol=1e-5)
    assert not np.allclose(tta, plain.classify(crops), atol=1e-4)
