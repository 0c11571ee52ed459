"""Bad input a new user gives: one clear line (at most 3), no traceback, a non-zero exit."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from emostream.cli.env_check import load_settings, unknown_variable_warnings
from emostream.cli.main import main
from emostream.config import DemoSettings, WorkerSettings


def run(capsys, argv: list[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code != 0, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert 1 <= len(lines) <= 3, err
    return err


@pytest.fixture(autouse=True)
def no_dotenv(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no .env of the developer's in the way


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("EMOSTREAM_WORKER__MAX_BATCH_FRAMES", "abc", "whole number"),
        ("EMOSTREAM_API__READ_KEYS", "key-1", "not valid JSON"),
        ("EMOSTREAM_DETECTOR__KIND", "haarr", "'haar'"),
        ("EMOSTREAM_MODEL__DTYPE", "fp8", "'fp32'"),
    ],
)
def test_invalid_setting_is_one_line_naming_the_variable(
    capsys, monkeypatch, variable, value, expected
):
    monkeypatch.setenv(variable, value)
    command = "aggregator" if "API" in variable else "worker"
    err = run(capsys, [command])
    assert variable in err and expected in err
    assert err.startswith(f"emostream {command}: error: ")


def test_invalid_demo_setting_names_the_variable(monkeypatch):
    monkeypatch.setenv("EMOSTREAM_API__ADMIN_KEYS", "[oops")
    with pytest.raises(Exception, match="EMOSTREAM_API__ADMIN_KEYS.*not valid JSON"):
        load_settings(DemoSettings, warn=False)


def test_unknown_variable_warns_with_the_nearest_name(monkeypatch, capsys):
    monkeypatch.setenv("EMOSTREAM_WORKER__MAXBATCH", "4")
    monkeypatch.setenv("EMOSTREAM_WORKER__MAX_WAIT_MS", "100")  # valid: no warning
    load_settings(WorkerSettings)
    err = capsys.readouterr().err
    assert err.count("warning") == 1
    assert "EMOSTREAM_WORKER__MAXBATCH" in err
    assert "did you mean EMOSTREAM_WORKER__MAX_BATCH_FRAMES" in err


def test_unknown_variable_in_dotenv_is_named_too(tmp_path):
    (tmp_path / ".env").write_text("EMOSTREAM_KAFKA__BOOTSTRAP_SERVER=kafka:9092\n")
    (line,) = unknown_variable_warnings({})
    assert "(in the .env)" in line and "EMOSTREAM_KAFKA__BOOTSTRAP_SERVERS" in line


def test_variables_of_other_services_are_not_unknown():
    env = {
        "EMOSTREAM_API__PORT": "8001",
        "EMOSTREAM_INGEST__FPS": "5",
        "EMOSTREAM_REDIS_MODE": "embedded",
        "EMOSTREAM_CACHE_DIR": "/tmp/x",
    }
    assert unknown_variable_warnings(env) == []


@pytest.fixture
def bad_files(tmp_path) -> dict[str, Path]:
    files = {
        "wrong.csv": b"a,b\n1,2\n",
        "notcsv.jpg": b"hello, not an image\n",
        "binary.csv": bytes(range(256)) * 8,
        "garbage.pt": b"PK not a checkpoint" * 64,
        "binary.csv.gz": b"\x1f\x8b\x08garbage" * 16,
    }
    out = {}
    for name, data in files.items():
        out[name] = tmp_path / name
        out[name].write_bytes(data)
    out["missing.csv"] = tmp_path / "missing.csv"
    return out


@pytest.mark.parametrize("command", ["eval", "train"])
@pytest.mark.parametrize(
    "name", ["missing.csv", "wrong.csv", "notcsv.jpg", "binary.csv", "binary.csv.gz"]
)
def test_train_and_eval_with_a_bad_data_file(capsys, bad_files, tmp_path, command, name):
    argv = [command, "--data", str(bad_files[name])]
    if command == "train":
        argv += ["--out", str(tmp_path / "run"), "--epochs", "1"]
    err = run(capsys, argv)
    assert name in err


@pytest.mark.parametrize("name", ["missing.pt", "garbage.pt"])
def test_predict_with_a_bad_checkpoint(capsys, bad_files, tmp_path, astronaut_bgr, name):
    import cv2

    image = tmp_path / "face.jpg"
    cv2.imwrite(str(image), astronaut_bgr)
    err = run(capsys, ["predict", str(image), "--checkpoint", str(tmp_path / name)])
    assert name in err


def test_demo_port_in_use_says_how_to_choose_another(capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        err = run(capsys, ["demo", "--api-port", str(port), "--duration", "1"])
    assert f"port {port}" in err and "--api-port" in err and "PORT=" in err


def test_demo_source_without_frames_fails_fast(capsys, bad_files):
    err = run(
        capsys,
        ["demo", "--source", str(bad_files["notcsv.jpg"]), "--api-port", "0", "--duration", "5"],
    )
    assert "yielded no frame" in err


def test_undecodable_source_is_one_line_without_decoder_noise(bad_files):
    """FFmpeg's own stderr (not Python's) is silenced too: checked on a real process."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OPENCV_FFMPEG_LOGLEVEL"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "emostream.cli.main",
            "demo",
            "--source",
            str(bad_files["notcsv.jpg"]),
            "--duration",
            "5",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "yielded no frame" in lines[0], done.stderr[-2000:]


def test_a_file_source_that_ends_without_frames_stops_ingest(bad_files):
    from emostream.config import IngestOptions
    from emostream.errors import ConfigError
    from emostream.ingest.runner import Ingest

    ingest = Ingest.__new__(Ingest)  # only the frame iterator; no producer needed
    ingest.options = IngestOptions(source=str(bad_files["notcsv.jpg"]), loop=True)
    ingest._reconnects = False
    ingest._stop = None
    with pytest.raises(ConfigError, match="yielded no frame"):
        next(Ingest._frames(ingest))


def test_demo_is_quiet_in_a_terminal_unless_verbose():
    from emostream.cli.main import build_parser
    from emostream.demo.runner import demo_log_level

    assert demo_log_level("INFO", quiet=False, verbose=False, tty=True) == "WARNING"
    assert demo_log_level("INFO", quiet=False, verbose=True, tty=True) == "INFO"
    assert demo_log_level("INFO", quiet=False, verbose=False, tty=False) == "INFO"  # logs to files
    assert demo_log_level("DEBUG", quiet=True, verbose=False, tty=False) == "WARNING"
    assert build_parser().parse_args(["demo", "-v"]).verbose is True


async def test_health_server_port_in_use_names_the_setting():
    from emostream.errors import ConfigError
    from emostream.runtime.health import health_server

    def ok():
        return True, {}

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(
            ConfigError,
            match=f"worker metrics port {port} .*already in use.*EMOSTREAM_WORKER__METRICS_PORT",
        ):
            async with health_server("worker", ok, ok, "127.0.0.1", port):
                pass


def test_version_comes_from_the_package_metadata(capsys):
    from importlib import metadata

    from emostream.cli.main import build_parser

    with pytest.raises(SystemExit) as done:
        build_parser().parse_args(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"emostream {metadata.version('emostream')}"


def test_checkpoint_and_dataset_errors_are_under_the_error_root():
    """The command line prints project errors as one line by `isinstance(exc, EmostreamError)`;
    the model's and the dataset's input errors belong to that root (and stay ValueErrors)."""
    from emostream.errors import CheckpointError, ConfigError, DatasetError, EmostreamError
    from emostream.models import CheckpointError as from_models
    from emostream.training import DatasetError as from_training

    for cls in (CheckpointError, DatasetError):
        assert issubclass(cls, EmostreamError) and issubclass(cls, ConfigError)
        assert issubclass(cls, ValueError)
    assert from_models is CheckpointError and from_training is DatasetError
    assert not hasattr(EmostreamError, "retriable")
