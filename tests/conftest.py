"""Shared test helpers (no services here: integration fixtures live in tests/integration)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.network_guard import Guard

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"  # the team's reference material, absent on users' machines


@pytest.fixture(scope="session")
def astronaut_bgr() -> np.ndarray:
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """No test reaches beyond 127.0.0.0/8 or [::1]: resolution and connects elsewhere raise."""
    Guard(monkeypatch)
