"""Move a trained RMN's weights into one with more or fewer residual blocks per stage.

Deeper (Net2DeeperNet): the target keeps every trained weight of the source, and each added
residual block starts as the identity (its last batch norm's scale and shift at zero, so the
block adds nothing: ``relu(0 + x) = x`` for the non-negative ``x`` a block receives). Training
then begins from the trained model's accuracy instead of from scratch.

Shallower: a stage's trailing blocks are dropped (residual blocks, so the rest still computes a
close function; how close is measured, not assumed). This is how a deep teacher seeds a student
that must stay fast: keep the blocks that matter, then fine-tune with the teacher distilled in.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import torch
from torch import nn

from emostream.models.checkpoint import EmotionClassifier
from emostream.models.rmn import ResMasking, RMNConfig

_BLOCK_KEY = re.compile(r"^layer(\d+)\.(\d+)\.")


def can_reshape(source: RMNConfig, target: RMNConfig) -> bool:
    """True when ``target`` is ``source`` with only the number of blocks per stage changed."""
    same = (
        source.widths == target.widths
        and source.mask_depths == target.mask_depths
        and source.stem == target.stem
        and source.num_classes == target.num_classes
        and source.in_channels == target.in_channels
        and len(source.blocks) == len(target.blocks)
    )
    return same and all(t >= 1 for t in target.blocks)


def can_deepen(source: RMNConfig, target: RMNConfig) -> bool:
    """True when ``target`` is ``source`` with the same or more residual blocks in every stage."""
    return can_reshape(source, target) and all(t >= s for s, t in zip(source.blocks, target.blocks))


_RESHAPE_RULE = "only the number of blocks per stage may change (widths, masks and stem unchanged)"
_DEEPEN_RULE = "only more blocks per stage, with widths, masks and stem unchanged"


def _target_config(
    source: RMNConfig,
    target: nn.Module,
    allowed: Callable[[RMNConfig, RMNConfig], bool],
    verb: str,
    rule: str,
) -> RMNConfig:
    """``target``'s RMN config, or a ValueError naming both shapes when ``allowed`` refuses it."""
    config = getattr(target, "config", None)
    if not isinstance(config, RMNConfig) or not allowed(source, config):
        raise ValueError(
            f"cannot {verb} an RMN with blocks {source.blocks}, widths {source.widths} into "
            f"{getattr(config, 'blocks', None)}, widths {getattr(config, 'widths', None)}: {rule}"
        )
    return config


def reshape_state_dict(
    state: dict[str, torch.Tensor], source: RMNConfig, target: nn.Module
) -> dict[str, torch.Tensor]:
    """``target``'s state dict holding ``state`` (a ``source``-shaped RMN's): blocks the target
    lacks are dropped, blocks the source lacks start as the identity.

    Raises:
        ValueError: ``target`` differs from ``source`` in more than blocks per stage.
    """
    config = _target_config(source, target, can_reshape, "reshape", _RESHAPE_RULE)
    reshaped = target.state_dict()
    for key, value in state.items():
        match = _BLOCK_KEY.match(key)
        if match and int(match.group(2)) >= config.blocks[int(match.group(1)) - 1]:
            continue  # a block the target does not have
        if key not in reshaped or reshaped[key].shape != value.shape:
            raise ValueError(f"weight {key!r} has no place in the target model")
        reshaped[key] = value.clone()
    for key in reshaped:
        match = _BLOCK_KEY.match(key)
        if match is None:
            continue
        stage, index = int(match.group(1)), int(match.group(2))
        if index >= source.blocks[stage - 1] and key.endswith((".bn2.weight", ".bn2.bias")):
            reshaped[key] = torch.zeros_like(reshaped[key])
    return reshaped


def deepen_state_dict(
    state: dict[str, torch.Tensor], source: RMNConfig, target: nn.Module
) -> dict[str, torch.Tensor]:
    """``reshape_state_dict`` restricted to growing: the target computes the source's function.

    Raises:
        ValueError: ``target`` is not ``source`` deepened (see ``can_deepen``).
    """
    _target_config(source, target, can_deepen, "deepen", _DEEPEN_RULE)
    return reshape_state_dict(state, source, target)


def reshape_classifier(model: EmotionClassifier, blocks: Sequence[int]) -> EmotionClassifier:
    """``model`` with ``blocks`` residual blocks per stage (``reshape_state_dict``), keeping its
    preprocessing, name, version and temperature; in eval mode.

    Raises:
        ValueError: ``model`` is not an RMN, or ``blocks`` is not one count per stage.
    """
    if not isinstance(model.net, ResMasking):
        raise ValueError(f"{model.name}: only a Residual Masking Network can be reshaped")
    source = model.net.config
    net = ResMasking(RMNConfig.from_dict({**source.to_dict(), "blocks": list(blocks)}))
    net.load_state_dict(reshape_state_dict(model.net.state_dict(), source, net))
    return EmotionClassifier(
        net,
        model.preprocessing,
        name=model.name,
        version=model.version,
        temperature=model.temperature,
    ).eval()
