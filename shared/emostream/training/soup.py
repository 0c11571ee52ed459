"""Model soups: one model from the mean weights of several runs of one architecture.

Students distilled from the same start (``--init``) with different seeds stay in one loss basin,
so their mean weights read faces at least as well as the better of them at the cost of one model
(Wortsman et al., 2022, "Model soups"; a uniform soup, no weights tuned). Batch-norm statistics of
averaged weights are not the average of the statistics, so they are recomputed on training faces.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from emostream.models.checkpoint import EmotionClassifier
from emostream.models.deepen import reshape_classifier
from emostream.models.rmn import ResMasking, RMNConfig
from emostream.training.augment import to_input


class SoupError(ValueError):
    """The checkpoints cannot be averaged (fewer than two, or different architectures)."""


def average_state(nets: Sequence[nn.Module]) -> dict[str, torch.Tensor]:
    """Mean of the floating tensors; integer buffers (batch counters) come from the first net."""
    if len(nets) < 2:
        raise SoupError(f"a soup needs two or more models, got {len(nets)}")
    states = [net.state_dict() for net in nets]
    first = states[0]
    for i, other in enumerate(states[1:], start=2):
        if other.keys() != first.keys():
            raise SoupError(f"model {i} has other parameters than model 1 (another architecture)")
        shapes = [k for k in first if other[k].shape != first[k].shape]
        if shapes:
            raise SoupError(f"model {i} differs from model 1 in shape at {shapes[:3]}")
    return {
        k: torch.stack([s[k].float() for s in states]).mean(0) if v.is_floating_point() else v
        for k, v in first.items()
    }


@torch.no_grad()
def recompute_batch_norm(
    model: EmotionClassifier, images_u8: np.ndarray, batch_size: int = 256
) -> int:
    """Replace every batch-norm's running statistics by their average over ``images_u8``.

    Train-mode forward passes through the classifier (so its input normalisation applies) with
    cumulative averaging; the model is left in eval mode. Returns how many norms were reset.
    """
    norms = [m for m in model.net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over all batches
    size = model.preprocessing.input_size
    model.train()
    try:
        for start in range(0, len(images_u8), batch_size):
            model(to_input(torch.from_numpy(images_u8[start : start + batch_size]), size))
    finally:
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum
        model.eval()
    return len(norms)


def _shapes(model: EmotionClassifier) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.net.state_dict().items()}


def _config(model: EmotionClassifier) -> RMNConfig:
    if not isinstance(model.net, ResMasking):
        raise SoupError(f"{model.name}: only Residual Masking Networks can be souped")
    return model.net.config


def reshape_like_first(models: Sequence[EmotionClassifier]) -> list[EmotionClassifier]:
    """Each model with the first's blocks per stage (``emostream.models.deepen``): a deeper one
    loses the blocks the first lacks, a shallower one gains identity blocks. So a fine-tuned
    student can be souped with the deep teacher it was cut from (its start).

    Raises:
        ValueError: a model differs from the first in more than blocks per stage.
    """
    first = models[0]
    shapes = _shapes(first)
    blocks = _config(first).blocks
    out = [first]
    for i, model in enumerate(models[1:], start=2):
        if _shapes(model) != shapes:
            model = reshape_classifier(model, blocks)
            if _shapes(model) != shapes:
                raise SoupError(f"model {i} differs from model 1 in more than blocks per stage")
        out.append(model)
    return out


def make_soup(models: Sequence[EmotionClassifier], images_u8: np.ndarray) -> EmotionClassifier:
    """The first model, holding the mean weights of all and batch-norm statistics of the images.

    Its temperature is reset to 1: calibrate the soup as any other checkpoint.
    """
    soup = models[0]
    soup.net.load_state_dict(average_state([m.net for m in models]))
    soup.temperature = 1.0
    recompute_batch_norm(soup, images_u8)
    return soup
