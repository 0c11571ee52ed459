"""Grow a trained RMN into a deeper one that computes the same function (Net2DeeperNet).

A warm start for a larger model: the deeper network keeps every trained weight of the shallower
one, and each added residual block starts as the identity (its last batch norm's scale and shift
at zero, so the block adds nothing: ``relu(0 + x) = x`` for the non-negative ``x`` a block
receives). Training then begins from the trained model's accuracy instead of from scratch.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from emostream.models.rmn import RMNConfig

_BLOCK_KEY = re.compile(r"^layer(\d+)\.(\d+)\.")


def can_deepen(source: RMNConfig, target: RMNConfig) -> bool:
    """True when ``target`` is ``source`` with the same or more residual blocks in every stage."""
    same = (
        source.widths == target.widths
        and source.mask_depths == target.mask_depths
        and source.stem == target.stem
        and source.num_classes == target.num_classes
        and source.in_channels == target.in_channels
        and len(source.blocks) == len(target.blocks)
    )
    return same and all(t >= s for s, t in zip(source.blocks, target.blocks))


def deepen_state_dict(
    state: dict[str, torch.Tensor], source: RMNConfig, target: nn.Module
) -> dict[str, torch.Tensor]:
    """``target``'s state dict holding ``state`` (a ``source``-shaped RMN's) and identity blocks.

    Raises:
        ValueError: ``target`` is not ``source`` deepened (see ``can_deepen``).
    """
    config = getattr(target, "config", None)
    if not isinstance(config, RMNConfig) or not can_deepen(source, config):
        raise ValueError(
            f"cannot deepen an RMN with blocks {source.blocks}, widths {source.widths} into "
            f"{getattr(config, 'blocks', None)}, widths {getattr(config, 'widths', None)}: "
            "only more blocks per stage, with widths, masks and stem unchanged"
        )
    grown = target.state_dict()
    for key, value in state.items():
        if key not in grown or grown[key].shape != value.shape:
            raise ValueError(f"weight {key!r} has no place in the deeper model")
        grown[key] = value.clone()
    for key in grown:
        match = _BLOCK_KEY.match(key)
        if match is None:
            continue
        stage, index = int(match.group(1)), int(match.group(2))
        if index >= source.blocks[stage - 1] and key.endswith((".bn2.weight", ".bn2.bias")):
            grown[key] = torch.zeros_like(grown[key])
    return grown
