"""The examples end on Ctrl-C without a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emostream.kafka import ensure_topics
from emostream.services.demo.embedded import free_port, port_open

pytestmark = pytest.mark.integration
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def interrupt(proc: subprocess.Popen, ready) -> tuple[int, str]:
    deadline = time.monotonic() + 60
    while not ready() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None, proc.stderr.read()
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    return proc.returncode, err


async def test_consume_events_ends_quietly_on_ctrl_c(kafka_settings):
    await ensure_topics(kafka_settings)
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "consume_events.py"), "--bootstrap",
         kafka_settings.bootstrap_servers, "--topic", kafka_settings.events_topic],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started = time.monotonic()
    code, err = interrupt(proc, lambda: time.monotonic() - started > 4)
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert code == 0


def test_webhook_bot_ends_quietly_on_ctrl_c():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "webhook_bot.py"), "--port", str(port), "--secret", "s"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    code, err = interrupt(proc, lambda: port_open(port))
    assert "Traceback" not in err, err
    assert code == 0
