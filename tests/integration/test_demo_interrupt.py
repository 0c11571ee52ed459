"""Ctrl-C on a real `emostream demo`: a SIGINT to its process group stops everything it started."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from emostream.local.servers import free_port
from tests.integration.demo_process import start_demo
from tests.waiting import wait_until_sync

pytestmark = pytest.mark.slow


def _children(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent has not collected it yet


@pytest.mark.parametrize("interrupts", [1, 2], ids=["one-ctrl-c", "two-ctrl-c"])
def test_ctrl_c_stops_every_process_the_demo_started(interrupts):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}  # the embedded Redis too
    proc = start_demo(port, env)  # its own process group: Ctrl-C signals the whole group
    children: set[int] = set()
    try:

        def streams_listed() -> bool:  # broker, Redis, ingest, worker and aggregator all working
            try:
                return bool(
                    httpx.get(f"http://127.0.0.1:{port}/v1/streams", timeout=2).json()["streams"]
                )
            except httpx.HTTPError:
                return False

        # Stops early if the demo exits: the assert below shows why.
        wait_until_sync(lambda: proc.poll() is not None or streams_listed(), 120, "a stream listed")
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        children = _children(proc.pid)
        assert len(children) >= 2, "expected the embedded broker and redis-server as children"
        for _ in range(interrupts):
            os.killpg(proc.pid, signal.SIGINT)
            time.sleep(0.3)  # deliberately apart: each SIGINT handled on its own
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        time.sleep(0.5)  # deliberately: children killed with the group take a moment to go
        survivors = [p for p in children if _alive(p)]
        for p in survivors:  # clean up what this test started, then fail below
            os.kill(p, signal.SIGKILL)
    assert survivors == [], f"orphaned after {interrupts} Ctrl-C: {survivors}"
    assert "Traceback" not in err, err[-2000:]
    if interrupts == 1:
        assert proc.returncode == 0, err[-2000:]
    else:
        # A hurried exit: clean, 130, or killed by the re-raised SIGINT (a shell shows 130 too).
        assert proc.returncode in (0, 130, -signal.SIGINT), err[-2000:]
