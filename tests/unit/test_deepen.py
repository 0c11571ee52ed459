"""Reshaping a trained RMN: growing a compact one into a deeper one (``--arch rmn_medium --init
compact.pt``) and dropping a deep teacher's blocks to seed a fast student."""

import pytest
import torch

from emostream.models import get_spec, save_checkpoint
from emostream.models.deepen import (
    can_deepen,
    can_reshape,
    deepen_state_dict,
    reshape_state_dict,
)
from emostream.training import TrainConfig, train
from emostream.training.fer2013 import write_csv
from tests.faces import synthetic


def _trained_looking_compact(seed: int = 3) -> torch.nn.Module:
    """A compact RMN with non-trivial batch-norm statistics, as a trained one has."""
    torch.manual_seed(seed)
    net = get_spec("rmn_compact").build()
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 2.0)
    return net.eval()


def test_deepened_model_computes_what_the_compact_one_did():
    compact = _trained_looking_compact()
    medium = get_spec("rmn_medium").build().eval()
    medium.load_state_dict(deepen_state_dict(compact.state_dict(), compact.config, medium))
    x = torch.rand(4, 3, 48, 48)
    with torch.no_grad():
        expected, got = compact(x), medium(x)
    assert torch.allclose(expected, got, atol=1e-5)
    # The added blocks are real blocks that start at the identity: random convs, zero last BN.
    added = medium.layer3[1]
    assert torch.count_nonzero(added.conv1.weight) > 0
    assert torch.count_nonzero(added.bn2.weight) == 0
    assert torch.equal(medium.layer3[0].conv1.weight, compact.layer3[0].conv1.weight)


def test_only_more_blocks_of_the_same_widths_can_deepen():
    names = ("rmn_compact", "rmn_medium", "rmn_small")
    compact, medium, small = (get_spec(n).config for n in names)
    assert can_deepen(compact, medium) and can_deepen(compact, compact)
    assert not can_deepen(medium, compact)  # shallower
    assert not can_deepen(compact, small)  # other widths
    net = _trained_looking_compact()
    with pytest.raises(ValueError, match="cannot deepen"):
        deepen_state_dict(net.state_dict(), compact, get_spec("rmn_small").build())


def test_a_shallower_target_keeps_the_blocks_it_has_and_drops_the_rest():
    medium = get_spec("rmn_medium").build()
    student = get_spec("rmn_compact_deep3").build()  # blocks (1, 1, 2, 1)
    assert can_reshape(medium.config, student.config)
    assert not can_deepen(medium.config, student.config)
    state = reshape_state_dict(medium.state_dict(), medium.config, student)
    student.load_state_dict(state)  # strict: every key the student has, no other
    for key in ("layer3.1.conv1.weight", "layer4.0.conv2.weight", "fc.1.weight"):
        assert torch.equal(student.state_dict()[key], medium.state_dict()[key])
    assert "layer4.1.conv1.weight" not in state and "layer1.1.bn2.weight" not in state
    with pytest.raises(ValueError, match="cannot deepen"):
        deepen_state_dict(medium.state_dict(), medium.config, student)
    with pytest.raises(ValueError, match="cannot reshape"):
        reshape_state_dict(medium.state_dict(), medium.config, get_spec("rmn_small").build())


def test_training_a_medium_model_from_a_compact_checkpoint_keeps_its_weights(tmp_path):
    csv = tmp_path / "fer.csv"
    write_csv(csv, synthetic(2))
    compact = _trained_looking_compact()
    init = save_checkpoint(
        tmp_path / "compact.pt",
        compact,
        "rmn_compact",
        get_spec("rmn_compact").preprocessing,
        meta={"trained": True},
    )
    common = dict(data=str(csv), epochs=1, batch_size=8, threads=1, max_batches=1, ema_decay=0)
    out = tmp_path / "medium"
    train(TrainConfig(out_dir=str(out), arch="rmn_medium", init=str(init), lr=1e-12, **common))
    net = torch.load(out / "last.pt", weights_only=True)["net"]
    assert "layer4.1.conv2.weight" in net  # the medium architecture was trained
    key = "layer2.0.conv1.weight"
    assert torch.allclose(net[key], compact.state_dict()[key].half().float(), atol=1e-3)
    assert float(net["layer2.1.bn2.weight"].abs().max()) < 1e-6


def test_reshaped_classifier_keeps_its_reading_settings_and_computes_the_same_when_grown():
    from emostream.models.checkpoint import EmotionClassifier
    from emostream.models.deepen import reshape_classifier

    spec = get_spec("rmn_compact")
    compact = EmotionClassifier(
        _trained_looking_compact(), spec.preprocessing, name="c", version="v1", temperature=0.8
    ).eval()
    grown = reshape_classifier(compact, (1, 1, 2, 1))
    assert grown.net.config.blocks == (1, 1, 2, 1)
    assert (grown.temperature, grown.version, grown.name) == (0.8, "v1", "c")
    assert not grown.training
    x = torch.rand(2, 3, 48, 48)
    with torch.no_grad():
        assert torch.allclose(compact(x), grown(x), atol=1e-5)
    with pytest.raises(ValueError):
        reshape_classifier(compact, (1, 1, 1))
