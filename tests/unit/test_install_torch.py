"""`make install` takes torch from PyTorch's CPU index by default, falls back to the plain pin when
that index cannot be reached, and installs the CUDA build on request (a fake pip records calls)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "install_torch.sh"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def fake_python(tmp_path: Path, index_reachable: bool) -> tuple[Path, Path]:
    """A 'python' whose `-m pip install` logs its arguments and, when the index is unreachable,
    fails for --index-url."""
    log = tmp_path / "pip.log"
    exe = tmp_path / "python"
    fail = "" if index_reachable else 'case "$*" in *--index-url*) exit 1;; esac\n'
    exe.write_text(f'#!/bin/sh\necho "$*" >> {log}\n{fail}exit 0\n')
    exe.chmod(0o755)
    return exe, log


def install(exe: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["sh", str(SCRIPT), str(exe), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=30,
    )


def test_cpu_build_from_pytorchs_cpu_index_by_default(tmp_path):
    exe, log = fake_python(tmp_path, index_reachable=True)
    assert install(exe).returncode == 0
    (call,) = log.read_text().splitlines()
    assert f"--index-url {CPU_INDEX}" in call and call.endswith("torch==2.13.0")
    assert "--timeout" in call


def test_unreachable_cpu_index_falls_back_to_the_plain_pin(tmp_path):
    exe, log = fake_python(tmp_path, index_reachable=False)
    done = install(exe, "cpu")
    assert done.returncode == 0
    first, second = log.read_text().splitlines()
    assert "--index-url" in first
    assert second == "-m pip install --quiet torch==2.13.0"
    assert "cannot be reached" in done.stderr


def test_cuda_switch_installs_the_public_build(tmp_path):
    exe, log = fake_python(tmp_path, index_reachable=True)
    assert install(exe, "cuda").returncode == 0
    assert log.read_text().splitlines() == ["-m pip install --quiet torch==2.13.0"]


def test_dry_run_prints_and_runs_nothing(tmp_path):
    exe, log = fake_python(tmp_path, index_reachable=True)
    done = install(exe, DRY_RUN="1")
    assert done.returncode == 0 and not log.exists()
    assert f"--index-url {CPU_INDEX} torch==2.13.0" in done.stdout


def test_unknown_build_is_refused(tmp_path):
    exe, _ = fake_python(tmp_path, index_reachable=True)
    done = install(exe, "rocm")
    assert done.returncode == 2 and "cpu or cuda" in done.stderr


@pytest.mark.parametrize(("switch", "flavour"), [([], "cpu"), (["TORCH=cuda"], "cuda")])
def test_makefile_uses_the_script_with_the_pyproject_pin(switch, flavour):
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = [d for d in project["dependencies"] if d.startswith("torch")]
    plan = subprocess.run(
        ["make", "-n", "-W", "pyproject.toml", "install", *switch],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    line = next(x for x in plan.splitlines() if x.startswith("TORCH_VERSION="))
    assert line.endswith(f" {flavour}")
    version = line.split("TORCH_VERSION=")[1].split()[0]
    assert pins and all(version in pin for pin in pins)
