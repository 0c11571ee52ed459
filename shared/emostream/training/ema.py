"""Exponential moving average of a network's weights (evaluated and shipped instead of the raw
weights: steadier at the end of a short schedule)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class WeightEMA:
    """``shadow = decay * shadow + (1 - decay) * weights`` after every optimiser step.

    The decay warms up as ``min(decay, (1 + step) / (10 + step))`` so early averages do not
    drag the random initialisation along. Floating buffers (batch-norm running statistics) are
    averaged too, as timm's ModelEmaV2 does: statistics copied from the live network would not
    match the averaged weights; integer buffers (batch counters) are copied.
    """

    def __init__(self, net: nn.Module, decay: float = 0.999) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.steps = 0
        self.module = copy.deepcopy(net).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        self.steps += 1
        d = min(self.decay, (1 + self.steps) / (10 + self.steps))
        for shadow, live in zip(self.module.parameters(), net.parameters()):
            shadow.lerp_(live.detach(), 1.0 - d)
        for shadow_buf, live_buf in zip(self.module.buffers(), net.buffers()):
            if shadow_buf.is_floating_point():
                shadow_buf.lerp_(live_buf.detach(), 1.0 - d)
            else:
                shadow_buf.copy_(live_buf)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "steps": self.steps, "module": self.module.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.decay = state["decay"]
        self.steps = state["steps"]
        self.module.load_state_dict(state["module"])
