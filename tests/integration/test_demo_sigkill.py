"""SIGKILL of a real `emostream demo`: its broker and Redis die with it and free their ports.

Issue 33, 12: a demo killed outright (no handler runs) left Tansu and redis-server running, in
their own sessions, holding their ports. They now get the parent-death signal.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from emostream.local.servers import free_port, port_open
from tests.integration.demo_process import start_demo
from tests.integration.test_demo_interrupt import _alive, _children
from tests.waiting import wait_until_sync

pytestmark = pytest.mark.slow


def _ports(pids: set[int]) -> dict[int, int]:
    """The port each embedded server listens on, from its command line."""
    ports = {}
    for pid in pids:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"redis-server " in argv[0]:  # its process title: redis-server <host:port>
            ports[pid] = int(argv[0].split()[1].rsplit(b":", 1)[1])
        for i, arg in enumerate(argv[:-1]):
            if arg == b"--listener-url":  # tansu: tcp://127.0.0.1:<port>
                ports[pid] = int(argv[i + 1].rsplit(b":", 1)[1])
    return ports


def test_sigkilled_demo_takes_its_broker_and_redis_with_it():
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}  # the embedded Redis too
    proc = start_demo(port, env)
    children: set[int] = set()
    try:

        def api_up() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/v1/streams", timeout=2).is_success
            except httpx.HTTPError:
                return False

        wait_until_sync(lambda: proc.poll() is not None or api_up(), 120, "the demo's API")
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        children = _children(proc.pid)
        ports = _ports(children)
        assert len(ports) == 2, f"expected the broker and redis-server: {ports}"
        assert all(port_open(p) for p in ports.values())
        t0 = time.monotonic()
        os.kill(proc.pid, signal.SIGKILL)  # the demo alone: no handler, no cleanup
        proc.wait(timeout=10)
        gone = wait_until_sync(
            lambda: not any(_alive(p) for p in children) or None, 10, "children gone", 0.1
        )
        freed = wait_until_sync(
            lambda: not any(port_open(p) for p in ports.values()) or None, 5, "ports freed", 0.1
        )
        assert gone and freed
        print(f"children gone and ports freed {time.monotonic() - t0:.2f} s after the SIGKILL")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for p in children:  # what this test started, should the assertion above fail
            if _alive(p):
                os.kill(p, signal.SIGKILL)
