"""``emostream demo`` as a user starts it, in a child process."""

from __future__ import annotations

import subprocess
import sys


def start_demo(port: int, env: dict[str, str]) -> subprocess.Popen:
    """The quiet demo with its API on ``port``; stderr piped (the summary line and errors).

    Its own session, as a shell gives a foreground job: a Ctrl-C to the process group reaches
    every process the demo starts.
    """
    return subprocess.Popen(
        [sys.executable, "-m", "emostream.cli.main", "demo", "--api-port", str(port), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
