import json
import pickle

import pytest
import torch

from emostream.models import (
    EMOTIONS,
    CheckpointError,
    ResMasking,
    get_spec,
    list_specs,
    load_checkpoint,
    save_checkpoint,
    untrained_model,
)
from tests.conftest import REFERENCE_DATA

MANIFEST = REFERENCE_DATA / "reference" / "rmn_resmasking_dropout1_state_dict.json"


@pytest.mark.parametrize("spec", list_specs(), ids=lambda s: s.name)
def test_every_registered_model_runs_on_its_input_shape(spec):
    torch.manual_seed(0)
    net = spec.build().eval()
    size = spec.preprocessing.input_size
    with torch.inference_mode():
        out = net(torch.rand(2, 3, size, size))
    assert out.shape == (2, len(EMOTIONS))
    assert torch.isfinite(out).all()
    assert spec.preprocessing.labels == EMOTIONS


@pytest.mark.skipif(
    not MANIFEST.exists(), reason="reference data (EMOSTREAM_REFERENCE_DATA) not present"
)
def test_checkpoint_built_from_manifest_loads_strictly(tmp_path):
    manifest = json.loads(MANIFEST.read_text())
    entries = manifest["keys"] if "keys" in manifest else manifest
    items = entries.items() if isinstance(entries, dict) else [(e["key"], e) for e in entries]
    gen = torch.Generator().manual_seed(0)
    state = {}
    for key, meta in items:
        dtype = getattr(torch, meta["dtype"].replace("torch.", ""))
        shape = tuple(meta["shape"])
        if dtype.is_floating_point:
            state[key] = torch.randn(shape, generator=gen, dtype=torch.float32).to(dtype) * 0.05
        else:
            state[key] = torch.zeros(shape, dtype=dtype)
    for key in state:
        if key.endswith("running_var"):
            state[key] = state[key].abs() + 1.0
    # The official module registers each mask shortcut twice (one module, two names).
    for key in list(state):
        parts = key.split(".")
        if parts[0].startswith("mask") and parts[1].startswith("downsample"):
            k = parts[1].removeprefix("downsample")
            state[key] = state[".".join([parts[0], f"conv{k}", "downsample", *parts[2:]])]
    path = tmp_path / "official.pth"
    torch.save({"net": state, "best_val_acc": 0.7}, path)
    model = load_checkpoint(path)
    assert model.name == "resmasking_dropout1" and model.preprocessing.input_size == 224
    own = model.net.state_dict()
    assert set(own) == set(state)
    for key in state:
        assert torch.equal(own[key].to(state[key].dtype), state[key]), key
    with torch.inference_mode():
        assert model(torch.rand(1, 3, 224, 224)).shape == (1, 7)


def test_official_layout_has_aliased_mask_shortcuts():
    keys = ResMasking().state_dict().keys()
    assert "mask1.downsample1.0.weight" in keys
    assert "mask1.conv1.downsample.0.weight" in keys
    assert "mask4.conv2.bn2.running_var" in keys
    assert len(keys) == 740


def test_project_checkpoint_round_trip(tmp_path):
    model = untrained_model("rmn_compact", seed=3)
    path = save_checkpoint(
        tmp_path / "m.pt",
        model.net,
        "rmn_compact",
        model.preprocessing,
        {"version": "t1", "trained": True},
    )
    loaded = load_checkpoint(path)
    assert loaded.version == "t1" and loaded.trained and not loaded.training
    x = torch.rand(4, 3, 48, 48)
    with torch.inference_mode():
        assert torch.allclose(model(x), loaded(x), atol=1e-5)
    half = save_checkpoint(
        tmp_path / "h.pt", model.net, "rmn_compact", model.preprocessing, half=True
    )
    assert half.stat().st_size < path.stat().st_size * 0.6
    with torch.inference_mode():
        assert (load_checkpoint(half)(x).softmax(1) - model(x).softmax(1)).abs().max() < 1e-2


def test_wrong_keys_fail_with_a_fix(tmp_path):
    net = get_spec("rmn_small").build()
    path = tmp_path / "x.pt"
    torch.save({"net": net.state_dict()}, path)
    with pytest.raises(CheckpointError, match="does not match architecture"):
        load_checkpoint(path)


def test_corrupt_and_foreign_files(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00not a checkpoint")
    with pytest.raises(CheckpointError):
        load_checkpoint(bad)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(1)}, other)
    with pytest.raises(CheckpointError, match="unknown checkpoint layout"):
        load_checkpoint(other)


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_arbitrary_pickles_are_refused(tmp_path):
    path = tmp_path / "evil.pt"
    with path.open("wb") as fh:
        pickle.dump({"net": Evil()}, fh, protocol=2)
    with pytest.raises(CheckpointError, match="weights-only|corrupt"):
        load_checkpoint(path)
