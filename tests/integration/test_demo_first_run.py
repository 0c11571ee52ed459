"""What `emostream demo` tells a new user: where its broker and Redis are, which API keys apply,
and that a file source ends with --once instead of looping."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import cv2
import httpx
import pytest

from emostream.cli.main import build_parser
from emostream.local.servers import free_port

pytestmark = pytest.mark.slow


def test_help_says_files_loop_and_offers_once():
    demo = build_parser()._subparsers._group_actions[0].choices["demo"]
    text = demo.format_help()
    assert "--once" in text and "loop" in text


def test_demo_states_addresses_keys_and_the_end_of_a_once_source(tmp_path, astronaut_bgr):
    folder = tmp_path / "clip"
    folder.mkdir()
    for i in range(4):
        cv2.imwrite(str(folder / f"{i:02d}.jpg"), astronaut_bgr)
    port = free_port()
    env = {
        k: v for k, v in os.environ.items() if k != "REDIS_URL" and not k.startswith("EMOSTREAM_")
    }
    env["EMOSTREAM_API__READ_KEYS"] = '["demo-read-key"]'  # as a copied .env.example would
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emostream.cli.main",
            "demo",
            "--source",
            str(folder),
            "--once",
            "--api-port",
            str(port),
            "--quiet",
            "--duration",
            "60",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    stored = None
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                r = httpx.get(
                    f"http://127.0.0.1:{port}/v1/streams",
                    timeout=2,
                    headers={"X-API-Key": "demo-read-key"},
                )
                streams = r.json()["streams"] if r.status_code == 200 else []
                if streams and streams[0]["last_frame_seq"] == 3:
                    stored = streams[0]
                    time.sleep(2)  # the demo checks its components once a second
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    assert stored is not None, err[-2000:]
    assert "Kafka broker on 127.0.0.1:" in err and "Redis on redis://127.0.0.1:" in err
    assert "API keys in force" in err and "1 read, 0 admin" in err
    assert "source ended after 4 frames" in err
