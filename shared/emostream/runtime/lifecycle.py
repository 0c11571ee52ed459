"""Signals and the HTTP server shared by service mains."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import math
import os
import resource
import signal
import socket
from collections.abc import Callable

import structlog
import uvicorn

from emostream.errors import ConfigError
from emostream.runtime.component import Component
from emostream.runtime.http_timeouts import protocol_class
from emostream.settings import HttpServerOptions

log = structlog.get_logger(__name__)

# Run before a forced exit (second Ctrl-C): kill what this process started, so nothing is orphaned.
_force_exit_hooks: dict[int, Callable[[], None]] = {}


def on_forced_exit(key: int, hook: Callable[[], None] | None) -> None:
    """Register (or with ``None`` remove) a hook run before a second interrupt exits at once."""
    if hook is None:
        _force_exit_hooks.pop(key, None)
    else:
        _force_exit_hooks[key] = hook


def _force_exit() -> None:
    for hook in list(_force_exit_hooks.values()):
        try:
            hook()
        except Exception:  # noqa: BLE001 - exiting anyway; the other hooks must still run
            pass
    os._exit(130)


def install_stop_handlers(on_stop: Callable[[], None]) -> None:
    """SIGTERM/SIGINT call ``on_stop`` (graceful); a second SIGINT kills our children and exits.

    Only these handlers see signals: ``ApiServer`` keeps uvicorn from capturing and re-raising
    them (its re-raised SIGINT used to look like a second Ctrl-C).
    """
    loop = asyncio.get_running_loop()
    hits = {"n": 0}

    def handler(signame: str) -> None:
        hits["n"] += 1
        if hits["n"] > 1 and signame == "SIGINT":
            log.warning("second interrupt: exiting now")
            _force_exit()
        log.info("stop requested", signal=signame)
        on_stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, handler, sig.name)
        except (NotImplementedError, RuntimeError):  # not the main thread (tests)
            pass


def check_port_free(host: str, port: int, what: str, fix: str) -> None:
    """Raise ConfigError naming ``fix`` when ``host:port`` cannot be bound (already in use)."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"{what} port {port} on {host} is already in use; {fix}"
                ) from None
            raise ConfigError(
                f"{what} cannot listen on {host}:{port}: {exc.strerror}; {fix}"
            ) from None


def _within_descriptors(limits: HttpServerOptions, what: str) -> HttpServerOptions:
    """The cap lowered to half the process's descriptor limit, so that connections alone can
    never take the descriptors that Kafka, Redis and ``/healthz`` need."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or limits.max_connections <= soft // 2:
        return limits
    log.info("connection cap lowered", server=what, cap=soft // 2, descriptors=soft)
    return limits.model_copy(update={"max_connections": max(1, soft // 2)})


class ApiServer(Component):
    """uvicorn inside our event loop, so one process serves HTTP and consumes Kafka.

    ``start()``/``stop()`` or ``async with`` (``Component``); ``start()`` returns once the
    server listens.

    Args:
        app: The ASGI application served.
        host: Interface to listen on.
        port: TCP port to listen on.
        what: The server's name, for the one-line error when the port is taken.
        fix: The setting that changes its port, named in that error.
        ws_max_size: Largest WebSocket message; a larger one closes the connection with 1009.
        limits: Idle, header and body timeouts and the connection cap (default: the defaults).
    """

    def __init__(
        self,
        app,
        host: str,
        port: int,
        what: str = "HTTP",
        fix: str = "choose another port",
        ws_max_size: int = 16 * 1024 * 1024,
        limits: HttpServerOptions | None = None,
    ) -> None:
        limits = _within_descriptors(limits or HttpServerOptions(), what)
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            lifespan="off",
            ws_max_size=ws_max_size,
            http=protocol_class(limits),  # idle, header and body deadlines, the cap
            limit_concurrency=limits.max_connections,
            timeout_keep_alive=math.ceil(limits.idle_timeout_s),
        )
        self._server = uvicorn.Server(config)
        # The service's own handlers decide what a signal means; uvicorn must neither install
        # handlers (older versions) nor capture and re-raise signals after serving (0.29+).
        # Both are monkeypatches of methods (the first one gone from uvicorn's current types).
        self._server.install_signal_handlers = lambda: None  # type: ignore[attr-defined]
        self._server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
        self._host, self._port, self._what, self._fix = host, port, what, fix
        self._task: asyncio.Task | None = None

    async def _start(self) -> None:
        check_port_free(self._host, self._port, self._what, self._fix)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task = None
                # uvicorn logs and sys.exit(1)s when it cannot bind (a port taken since the check).
                raise ConfigError(
                    f"{self._what} server could not start on {self._host}:{self._port}; {self._fix}"
                )
            await asyncio.sleep(0.02)

    async def _stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            self._server.should_exit = True
            await asyncio.wait_for(task, timeout=10)
