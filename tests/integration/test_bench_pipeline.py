"""`emostream bench pipeline` (issue 37's acceptance command) runs end to end on the embedded
broker, and says what ran the networks: ONNX Runtime by default, eager torch when asked or naive."""

import json

from emostream.cli.main import main


def test_batched_and_naive_runs_report_their_runtimes(capsys, monkeypatch):
    # fp32 as on an AVX2-only CPU: where the CPU has native bf16, dtype auto picks bf16 and the
    # classifier stays on torch by design (emostream.onnx_cpu.cpu_network).
    monkeypatch.setenv("EMOSTREAM_MODEL__DTYPE", "fp32")
    argv = ["bench", "pipeline", "--mode", "both", "--streams", "1", "--fps", "4"]
    assert main([*argv, "--duration", "3", "--ingest-in-process", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    by_mode = {r["mode"]: r for r in result["results"]}
    assert by_mode["batched"]["runtime"] == {"model": "onnxruntime", "detector": "onnxruntime"}
    assert by_mode["naive"]["runtime"] == {"model": "torch", "detector": "torch"}
    assert all(r["processed_fps"] > 0 for r in by_mode.values())
    assert result["speedup_processed_fps"] > 0


def test_the_runtime_settings_reach_the_batched_worker(capsys, monkeypatch):
    monkeypatch.setenv("EMOSTREAM_MODEL__RUNTIME", "torch")
    monkeypatch.setenv("EMOSTREAM_DETECTOR__RUNTIME", "torch")
    argv = ["bench", "pipeline", "--mode", "batched", "--streams", "1", "--fps", "4"]
    assert main([*argv, "--duration", "2", "--ingest-in-process", "--json"]) == 0
    (batched,) = json.loads(capsys.readouterr().out)["results"]
    assert batched["runtime"] == {"model": "torch", "detector": "torch"}
