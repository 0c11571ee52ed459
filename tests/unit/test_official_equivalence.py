"""Same weights, same outputs as the official ``resmasking_dropout1`` implementation.

The official code is not a dependency. Point ``EMOSTREAM_RMN_REFERENCE`` at the unpacked ``rmn``
wheel (``pip download rmn==3.3.0 --no-deps``, unzip into ``pkg``: ``pkg/rmn``, the folder holding
``models/resmasking.py``); ``.ci/run`` does this. The test skips without it.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import pytest
import torch

from emostream.models import load_checkpoint

REFERENCE = os.environ.get("EMOSTREAM_RMN_REFERENCE")


def _official_resmasking(root: Path):
    """Import models/resmasking.py (and its relative imports) without the package __init__,
    which pulls optional dependencies."""
    import types

    pkg = types.ModuleType("rmn_reference_models")
    pkg.__path__ = [str(root / "models")]
    sys.modules["rmn_reference_models"] = pkg
    utils = importlib.import_module("rmn_reference_models.utils")
    if not hasattr(utils, "load_state_dict_from_url"):  # rmn 3.3.0 ships this module emptied
        utils.load_state_dict_from_url = torch.hub.load_state_dict_from_url
    return importlib.import_module("rmn_reference_models.resmasking")


@pytest.mark.skipif(not REFERENCE, reason="EMOSTREAM_RMN_REFERENCE not set")
def test_outputs_match_official_implementation(tmp_path):
    pkg = _official_resmasking(Path(REFERENCE))
    torch.manual_seed(0)
    official = pkg.resmasking_dropout1(in_channels=3, num_classes=7).eval()
    # Non-trivial BatchNorm statistics, as a trained checkpoint has.
    with torch.no_grad():
        for m in official.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    path = tmp_path / "official.pth"
    torch.save({"net": official.state_dict(), "best_val_acc": 0.0}, path)
    ours = load_checkpoint(path)
    x = torch.rand(4, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected = official(x)
        got = ours(x)
    diff = (expected - got).abs().max().item()
    print(f"max abs logit difference vs official: {diff:.3e}")
    assert diff < 1e-3, f"max abs logit difference {diff}"
