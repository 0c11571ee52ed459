"""`emostream bench worker` runs on the CPU on a tiny input and prints every field it promises."""

import json

import pytest

from emostream.cli.main import main
from emostream.config import WorkerOptions


@pytest.mark.parametrize("overlap", [[], ["--overlap"]], ids=["sequential", "overlap"])
def test_bench_worker_cpu_json(capsys, overlap):
    assert (
        main(
            [
                "bench",
                "worker",
                "--device",
                "cpu",
                "--frames",
                "8",
                "--reference-frames",
                "8",
                "--streams",
                "2",
                "--batch-frames",
                "3",
                "--device-batch-frames",
                "3",
                "--detector",
                "yunet_torch",
                "--json",
                *overlap,
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["benchmark"] == "worker" and report["device"] == "cpu"
    assert report["frame_size"] == [640, 480]
    # Streams with 1 and 2 faces, 4 frames each; events once a track is confirmed.
    faces = 3 * max(0, 4 - getattr(WorkerOptions(), "track_min_hits", 1) + 1)
    for path in ("cpu_path", "device_path"):
        figures = report[path]
        assert figures["frames_ok"] == 8 and figures["rejected"] == 0
        assert figures["faces"] == faces
        assert figures["frames_per_s"] > 0 and figures["faces_per_s"] > 0
        assert 0 < figures["latency_ms"]["p50"] <= figures["latency_ms"]["p99"]
    assert report["frames_per_s"] == report["device_path"]["frames_per_s"]
    assert report["speedup_vs_cpu_path"] > 0
    agreement = report["agreement"]
    assert agreement["faces_compared"] == faces
    assert agreement["box_iou_ge_0_9"] == 1.0 and agreement["dominant_emotion"] == 1.0
    assert set(report["agreement_vs_cpu_path_as_configured"]) == set(agreement)


def test_bench_worker_cuda_without_cuda_is_one_line(capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["bench", "worker", "--device", "cuda", "--frames", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("emostream bench: error: --device cuda:") and "\n" not in err
