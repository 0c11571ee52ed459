"""Signals and the HTTP server shared by service mains."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable

import structlog
import uvicorn

log = structlog.get_logger(__name__)


def install_stop_handlers(on_stop: Callable[[], None]) -> None:
    """SIGTERM/SIGINT call ``on_stop`` (graceful); a second SIGINT exits at once."""
    loop = asyncio.get_running_loop()
    hits = {"n": 0}

    def handler(signame: str) -> None:
        hits["n"] += 1
        if hits["n"] > 1 and signame == "SIGINT":
            log.warning("second interrupt: exiting now")
            os._exit(130)
        log.info("stop requested", signal=signame)
        on_stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, handler, sig.name)
        except (NotImplementedError, RuntimeError):  # not the main thread (tests)
            pass


class ApiServer:
    """uvicorn inside our event loop, so one process serves HTTP and consumes Kafka."""

    def __init__(self, app, host: str, port: int) -> None:
        config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False,
                                lifespan="off")
        self._server = uvicorn.Server(config)
        self._server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self._task: asyncio.Task | None = None

    async def start(self) -> ApiServer:
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("API server exited during start-up")
            await asyncio.sleep(0.02)
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._server.should_exit = True
            await asyncio.wait_for(self._task, timeout=10)
            self._task = None

    async def __aenter__(self) -> ApiServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
