"""The README's examples, pasted as written, work against `emostream demo` (only the port differs:
the test's demo listens on a free one)."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from emostream.local.servers import free_port
from tests.integration.demo_process import start_demo
from tests.waiting import wait_until_sync

pytestmark = pytest.mark.slow
README = Path(__file__).resolve().parents[2] / "README.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.S)


def curl_blocks() -> list[str]:
    """The bash blocks that call the API (each run as pasted, as one script)."""
    return [b for b in blocks("bash") if b.lstrip().startswith("curl ")]


def test_readme_has_curl_examples():
    scripts = curl_blocks()
    assert any("/v1/rules" in c for c in scripts) and any("/v1/streams" in c for c in scripts)


def test_readme_webhook_verifier_accepts_a_signed_body():
    (snippet,) = [b for b in blocks("python") if "def verify" in b]
    scope: dict = {}
    exec(snippet, scope)  # noqa: S102 - the README's own code
    ts, body = str(int(time.time())), b'{"alert_id": "x"}'
    digest = hmac.new(b"s3cret", f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    signature = "sha256=" + digest
    assert scope["verify"](b"s3cret", ts, body, signature)
    assert not scope["verify"](b"other", ts, body, signature)


def test_readme_curl_examples_work_against_the_demo():
    port = free_port()
    env = {
        k: v for k, v in os.environ.items() if k != "REDIS_URL" and not k.startswith("EMOSTREAM_")
    }  # the demo as a user gets it
    proc = start_demo(port, env)
    try:

        def events_stored() -> bool:
            try:
                r = httpx.get(
                    f"http://127.0.0.1:{port}/v1/streams/sample-astronaut/events", timeout=2
                )
                return r.status_code == 200 and bool(r.json()["events"])
            except httpx.HTTPError:
                return False

        # Stops early if the demo exits: the assert below shows why.
        wait_until_sync(lambda: proc.poll() is not None or events_stored(), 120, "events stored")
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        for script in curl_blocks():
            # As pasted; only curl fails on HTTP errors here (a 4xx would otherwise pass).
            local = 'set -e\ncurl() { command curl --fail-with-body -sS "$@"; }\n' + script.replace(
                "localhost:8000", f"127.0.0.1:{port}"
            )
            done = subprocess.run(["bash", "-c", local], capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, f"{script}\n{done.stdout}{done.stderr}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
