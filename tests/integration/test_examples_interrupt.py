"""The examples end on Ctrl-C without a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from emostream.kafka.clients import ensure_topics
from emostream.local.servers import free_port, port_open

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _as_in_a_terminal() -> None:
    """Children of a background job inherit SIGINT ignored (POSIX shells do that for `cmd &`),
    and Python then never raises KeyboardInterrupt; a terminal's foreground job has it default."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt(proc: subprocess.Popen, ready) -> tuple[int, str]:
    deadline = time.monotonic() + 60
    while not ready() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None, proc.stderr.read()
    time.sleep(1.0)  # deliberately: the interrupt lands in the example's loop, not its start-up
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    return proc.returncode, err


async def test_consume_events_ends_quietly_on_ctrl_c(kafka_settings):
    await ensure_topics(kafka_settings)
    proc = subprocess.Popen(
        [
            sys.executable,
            str(EXAMPLES / "consume_events.py"),
            "--bootstrap",
            kafka_settings.bootstrap_servers,
            "--topic",
            kafka_settings.events_topic,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_as_in_a_terminal,
    )
    started = time.monotonic()
    code, err = interrupt(proc, lambda: time.monotonic() - started > 4)
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert code == 0


def test_webhook_bot_ends_quietly_on_ctrl_c():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "webhook_bot.py"), "--port", str(port), "--secret", "s"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
        preexec_fn=_as_in_a_terminal,
    )
    code, err = interrupt(proc, lambda: port_open(port))
    assert "Traceback" not in err, err
    assert code == 0
