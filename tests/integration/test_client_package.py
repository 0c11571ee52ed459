"""`pip install ./clients/python` in a fresh virtual environment: it installs without torch, OpenCV
or the service, and its own tests pass there (about 30 s on the 2-core machine)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

CLIENT = Path(__file__).resolve().parents[2] / "clients" / "python"


@pytest.mark.timeout(600)
def test_the_client_installs_alone_and_its_tests_pass(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    install = subprocess.run(
        [python, "-m", "pip", "install", "-q", f"{CLIENT}[test]"],
        capture_output=True,
        text=True,
        timeout=480,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    absent = subprocess.run(
        [
            python,
            "-c",
            "import importlib.util as u; print([m for m in ('torch', 'cv2', "
            "'emostream', 'numpy') if u.find_spec(m)])",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert absent.stdout.strip() == "[]", absent.stdout + absent.stderr
    tests = subprocess.run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(CLIENT / "tests")],
        cwd=tmp_path,  # the installed package, not the source folder
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
    assert " passed" in tests.stdout and "failed" not in tests.stdout
