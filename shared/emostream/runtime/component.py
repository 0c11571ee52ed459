"""One lifecycle for every long-lived async part of a service (consumers, stores, servers, hubs).

``start()`` runs the subclass's ``_start()`` once; ``stop()`` runs ``_stop()`` once, whether the
component was started, partly started, or never started (clients created in ``__init__`` are
closed either way); ``async with`` does both. A ``_start()`` that raises is followed by ``_stop()``,
so a half-opened component releases what it opened before the error reaches the caller. A stopped
component can be started again.
"""

from __future__ import annotations

from typing import Self


class Component:
    """Base for long-lived async components: idempotent ``start``/``stop``, ``async with``."""

    _started: bool = False
    _closed: bool = False

    async def _start(self) -> None:
        """Open connections, spawn tasks. Called once per ``start()`` of a stopped component."""

    async def _stop(self) -> None:
        """Release everything ``_start`` (or ``__init__``) acquired. Called once per ``stop()``."""

    @property
    def started(self) -> bool:
        return self._started

    async def start(self) -> Self:
        if self._started:
            return self
        self._closed = False
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise
        self._started = True
        return self

    async def stop(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._started = False
        await self._stop()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
