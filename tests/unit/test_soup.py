"""Model soups: mean weights of runs of one architecture, batch norms re-estimated on faces."""

import numpy as np
import pytest
import torch

from emostream.models import get_spec
from emostream.models.checkpoint import EmotionClassifier
from emostream.training.soup import SoupError, average_state, make_soup, recompute_batch_norm


def _model(seed: int, arch: str = "rmn_compact") -> EmotionClassifier:
    torch.manual_seed(seed)
    spec = get_spec(arch)
    return EmotionClassifier(spec.build(), spec.preprocessing, name=spec.name, temperature=0.9)


def _faces(n: int = 24, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 48, 48), dtype=np.uint8)


def test_soup_weights_are_the_mean_of_the_ingredients():
    a, b = _model(1), _model(2)
    mean = average_state([a.net, b.net])
    name = "conv1.weight"
    expected = (a.net.state_dict()[name] + b.net.state_dict()[name]) / 2
    assert torch.allclose(mean[name], expected)
    assert not torch.allclose(mean[name], a.net.state_dict()[name])
    counters = [k for k, v in mean.items() if not v.is_floating_point()]
    assert counters and all(torch.equal(mean[k], a.net.state_dict()[k]) for k in counters)


def test_soup_refuses_one_model_and_mixed_architectures():
    with pytest.raises(SoupError, match="two or more"):
        average_state([_model(1).net])
    with pytest.raises(SoupError, match="architecture|shape"):
        average_state([_model(1).net, _model(2, "rmn_compact_deep3").net])


def test_batch_norm_statistics_are_those_of_the_faces_and_the_model_is_left_in_eval():
    model = _model(3)
    first = next(m for m in model.net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    faces = _faces()
    assert recompute_batch_norm(model, faces, batch_size=8) > 0
    assert not model.training and first.momentum == 0.1
    # The first norm sits right after the stem convolution: recompute its input by hand.
    from emostream.training.augment import to_input

    seen = []
    hook = first.register_forward_hook(lambda _m, inp, _out: seen.append(inp[0]))
    with torch.no_grad():
        model(to_input(torch.from_numpy(faces), 48))
    hook.remove()
    expected = seen[0].mean(dim=(0, 2, 3))
    assert torch.allclose(first.running_mean, expected, atol=1e-4)


def test_make_soup_resets_the_temperature_and_predicts():
    soup = make_soup([_model(4), _model(5)], _faces())
    assert soup.temperature == 1.0
    with torch.no_grad():
        out = soup(torch.rand(2, 3, 48, 48))
    assert out.shape == (2, 7) and torch.isfinite(out).all()


def test_flip_scores_count_accuracy_and_neutral_recall():
    from emostream.models.registry import EMOTIONS
    from emostream.training.evaluate import flip_accuracy_and_neutral_recall

    model = _model(6)
    model.temperature = 1.0
    neutral = EMOTIONS.index("neutral")
    faces = _faces(10)
    labels = np.array([neutral] * 4 + [0] * 6)
    # Force the last linear layer to answer neutral for every face.
    head = [m for m in model.net.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
        head.bias[neutral] = 5.0
    scores = flip_accuracy_and_neutral_recall(model, faces, labels)
    assert scores == {"accuracy": 0.4, "neutral_recall": 1.0}


def test_a_deeper_model_is_reshaped_to_the_first_before_souping():
    from emostream.training.soup import reshape_like_first

    student, teacher = _model(7, "rmn_compact_deep3"), _model(8, "rmn_medium")
    same = _model(9, "rmn_compact_deep3")
    aligned = reshape_like_first([student, teacher, same])
    assert aligned[0] is student and aligned[2] is same
    assert aligned[1].net.state_dict().keys() == student.net.state_dict().keys()
    # Weights the two share (the stem) are carried over unchanged.
    assert torch.equal(
        aligned[1].net.state_dict()["conv1.weight"], teacher.net.state_dict()["conv1.weight"]
    )
    soup = make_soup(aligned, _faces())
    assert soup.net.state_dict().keys() == student.net.state_dict().keys()
    with pytest.raises(ValueError):
        reshape_like_first([student, _model(10, "rmn_small")])
