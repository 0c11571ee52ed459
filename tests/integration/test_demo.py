"""`emostream demo` as a user runs it: stream listed within 30 s, real events, clean exit."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest

from emostream.local.servers import free_port, port_open

pytestmark = pytest.mark.slow


def test_demo_serves_events_and_exits_clean():
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}  # exercise the embedded Redis
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emostream.cli.main",
            "demo",
            "--duration",
            "35",
            "--api-port",
            str(port),
            "--quiet",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    started = time.monotonic()
    listed_at = None
    events = []
    try:
        while time.monotonic() - started < 35:
            try:
                streams = httpx.get(f"http://127.0.0.1:{port}/v1/streams", timeout=2).json()
            except httpx.HTTPError:
                streams = {"streams": []}
            ids = [s["stream_id"] for s in streams["streams"]]
            if "sample-astronaut" in ids:
                listed_at = listed_at or time.monotonic() - started
                body = httpx.get(
                    f"http://127.0.0.1:{port}/v1/streams/sample-astronaut/events",
                    params={"limit": 50},
                    timeout=2,
                ).json()
                events = body["events"]
                if events:
                    break
            time.sleep(0.5)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err[-2000:]
    assert listed_at is not None and listed_at < 30, f"stream listed after {listed_at} s"
    assert events, "no events served"
    ev = events[0]
    assert ev["face"]["box"]["w"] > 0
    assert len(ev["emotion"]["probabilities"]) == 7
    assert sum(ev["emotion"]["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
    assert "frames sent" in out
    assert not port_open(port), "API port still open after exit"
