"""A Redis Cluster on loopback for tests: 3 masters + 3 replicas, nothing kept on disk.

``redis_cluster`` (module-scoped fixture) yields a started ``RedisCluster6``; ``url`` points at
one node (any node works: the aggregator detects the cluster). ``kill(port)`` SIGKILLs a node,
``wait_failover(port)`` waits until a replica took over its slots (node timeout 2 s).
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

NODE_TIMEOUT_MS = 2000


def _cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + 10000 > 65535:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


class RedisCluster6:
    """Six redis-server processes joined by ``redis-cli --cluster create``."""

    def __init__(self) -> None:
        self.ports: list[int] = []
        self.procs: dict[int, subprocess.Popen] = {}
        self._dir = Path(tempfile.mkdtemp(prefix="emostream-cluster-"))

    @property
    def url(self) -> str:
        alive = [p for p in self.ports if self.procs[p].poll() is None]
        return f"redis://127.0.0.1:{alive[0]}/0"

    def start(self) -> RedisCluster6:
        ports: list[int] = []
        while len(ports) < 6:
            port = _cluster_port()
            if port not in ports:
                ports.append(port)
        self.ports = ports
        for port in ports:
            self._spawn(port)
        for port in ports:
            self._wait_ping(port)
        subprocess.run(
            [shutil.which("redis-cli") or "redis-cli", "--cluster", "create"]
            + [f"127.0.0.1:{p}" for p in ports]
            + ["--cluster-replicas", "1", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        self.wait_ok()
        return self

    def _spawn(self, port: int) -> None:
        node_dir = self._dir / str(port)
        node_dir.mkdir(exist_ok=True)
        args = [shutil.which("redis-server") or "redis-server", "--port", str(port)]
        args += ["--bind", "127.0.0.1", "--cluster-enabled", "yes"]
        args += ["--cluster-config-file", f"nodes-{port}.conf", "--dir", str(node_dir)]
        args += ["--cluster-node-timeout", str(NODE_TIMEOUT_MS), "--save", "", "--appendonly"]
        args += ["no", "--cluster-replica-validity-factor", "0", "--protected-mode", "yes"]
        log = open(node_dir / "redis.log", "wb")  # noqa: SIM115 - closed with the process
        self.procs[port] = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)

    def _wait_ping(self, port: int, timeout_s: float = 10) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                with redis.Redis(port=port, socket_timeout=1) as r:
                    if r.ping():
                        return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on {port} did not start")

    def node_info(self, port: int, section: str) -> dict:
        with redis.Redis(port=port, socket_timeout=2, decode_responses=True) as r:
            return r.info(section)

    def wait_ok(self, timeout_s: float = 60) -> None:
        """Until every live node reports cluster_state:ok and 3 masters serve all slots."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                live = [p for p in self.ports if self.procs[p].poll() is None]
                states = [self._cluster_info(p) for p in live]
                if all(s["cluster_state"] == "ok" for s in states) and all(
                    int(s["cluster_slots_ok"]) == 16384 for s in states
                ):
                    if self._replicas_in_sync(live):
                        return
            except redis.RedisError:
                pass
            time.sleep(0.2)
        raise RuntimeError("the cluster did not reach cluster_state:ok")

    def _replicas_in_sync(self, live: list[int]) -> bool:
        """Every master that has a live replica sees it online (the initial sync is done)."""
        for port in live:
            repl = self.node_info(port, "replication")
            if repl.get("role") != "master" or int(repl.get("connected_slaves", 0)) == 0:
                continue
            if repl.get("slave0", {}).get("state") != "online":
                return False
        replicas = [p for p in live if self.node_info(p, "replication").get("role") == "slave"]
        return all(
            self.node_info(p, "replication").get("master_link_status") == "up" for p in replicas
        )

    def _cluster_info(self, port: int) -> dict[str, str]:
        with redis.Redis(port=port, socket_timeout=2, decode_responses=True) as r:
            text = r.execute_command("CLUSTER", "INFO")
        if isinstance(text, dict):
            return {str(k): str(v) for k, v in text.items()}
        return dict(line.split(":", 1) for line in text.strip().splitlines() if ":" in line)

    def kill(self, port: int) -> None:
        self.procs[port].send_signal(signal.SIGKILL)
        self.procs[port].wait(10)

    def wait_failover(self, killed: int, timeout_s: float = 60) -> int:
        """The port of the replica that took over ``killed``'s slots, once the cluster is ok."""
        self.wait_ok(timeout_s)
        for port in self.ports:
            if port == killed or self.procs[port].poll() is not None:
                continue
            repl = self.node_info(port, "replication")
            if repl.get("role") == "master" and port not in self._initial_masters:
                return port
        raise RuntimeError("no replica was promoted")

    def primary_ports(self) -> list[int]:
        """Live masters (each owns a third of the slots after ``start``)."""
        return [
            p
            for p in self.ports
            if self.procs[p].poll() is None
            and self.node_info(p, "replication").get("role") == "master"
        ]

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        shutil.rmtree(self._dir, ignore_errors=True)

    _initial_masters: list[int] = []

    def __enter__(self) -> RedisCluster6:
        self.start()
        self._initial_masters = self.primary_ports()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture(scope="module")
def redis_cluster() -> Iterator[RedisCluster6]:
    if not (shutil.which("redis-server") and shutil.which("redis-cli")):
        pytest.skip("redis-server and redis-cli are needed for a Redis Cluster")
    with RedisCluster6() as cluster:
        yield cluster
