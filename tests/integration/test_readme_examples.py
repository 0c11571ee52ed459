"""The README's examples, pasted as written, work against `emostream demo` (only the port differs:
the test's demo listens on a free one)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from standardwebhooks import Webhook

from emostream.local.servers import free_port
from emostream.webhooks import new_secret, signed_headers
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
    """The README's plain-Python verifier, on what the aggregator sends with the kind of secret
    the demo prints (a str: the snippet before took bytes and raised TypeError on a str, and on
    a missing header), agrees with the standardwebhooks library."""
    (snippet,) = [b for b in blocks("python") if "def verify" in b]
    scope: dict = {}
    exec(snippet, scope)  # noqa: S102 - the README's own code
    verify = scope["verify"]
    secret, body = new_secret(), b'{"alert_id": "x"}'
    headers = signed_headers([secret], "x", body)
    Webhook(secret).verify(body, headers)  # the library agrees these are valid
    assert verify(secret, headers, body)
    assert not verify(new_secret(), headers, body)
    assert not verify(secret, headers, body + b" ")
    assert verify(secret, signed_headers([new_secret(), secret], "x", body), body)  # rotation
    for missing in headers:
        assert not verify(secret, {k: v for k, v in headers.items() if k != missing}, body)
    assert not verify(secret, {}, body)
    old = signed_headers([secret], "x", body, now_s=time.time() - 3600)
    assert not verify(secret, old, body)
    assert not verify(secret, headers | {"webhook-timestamp": "soon"}, body)


def test_readme_no_longer_documents_the_old_signature():
    text = README.read_text()
    assert "X-Emostream-Signature" not in text and "sha256=" not in text


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
