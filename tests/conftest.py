"""Shared test helpers (no services here: integration fixtures live in tests/integration)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tests.network_guard import Guard

REPO = Path(__file__).resolve().parents[1]
INTEGRATION_DIR = REPO / "tests" / "integration"
# The reference data folder (reference weights' manifests, YuNet ONNX, photos): the team's copy
# beside the checkout by default, absent on users' machines, so the tests that need it skip.
REFERENCE_DATA = Path(os.environ.get("EMOSTREAM_REFERENCE_DATA", REPO.parent / "shared"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/integration/ as integration (by folder, not per file)."""
    for item in items:
        if item.path.is_relative_to(INTEGRATION_DIR):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def astronaut_bgr() -> np.ndarray:
    from emostream.sample_photo import astronaut_bgr

    return astronaut_bgr()


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """No test reaches beyond 127.0.0.0/8 or [::1]: resolution and connects elsewhere raise."""
    Guard(monkeypatch)
