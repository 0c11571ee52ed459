"""``model.threads``: its description says what the worker does when it is unset."""

from __future__ import annotations

import os

import cv2
import torch

from emostream.config import WorkerSettings
from emostream.vision_options import ModelOptions
from emostream.worker.factory import split_cpu_threads


def test_unset_model_threads_gives_torch_a_quarter_of_the_cores(monkeypatch):
    before, cv_before = torch.get_num_threads(), cv2.getNumThreads()
    monkeypatch.delenv("EMOSTREAM_MODEL__THREADS", raising=False)
    try:
        split_cpu_threads(WorkerSettings())
        assert torch.get_num_threads() == max(1, (os.cpu_count() or 1) // 4)
    finally:
        torch.set_num_threads(before)
        cv2.setNumThreads(cv_before)
    described = ModelOptions.model_fields["threads"].description or ""
    assert "a quarter of the CPU count" in described and "worker" in described
