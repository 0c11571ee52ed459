"""Idle, header and body timeouts and a connection cap for uvicorn's HTTP/1.1 protocol (h11).

uvicorn times out only a keep-alive connection, and only until its first byte: a connection that
never sends a request, sends its headers a byte at a time (slow loris) or trickles its body stays
open for ever, and enough of them exhaust the process's file descriptors. Here every connection
always has one deadline, for the phase it is in:

- idle (``idle_timeout_s``): open, or answered and kept alive, with no byte of a new request;
- header (``header_timeout_s``): from a request's first byte to the end of its headers;
- body (``body_timeout_s``): from the end of the headers to the end of the body.

While the application answers, no deadline runs (its own timeouts apply). Past a deadline the
connection is closed; the application, if it was reading the body, sees a disconnect. A
connection over ``max_connections`` is closed as soon as it is accepted. WebSockets leave this
protocol once upgraded (uvicorn's pings then find dead peers).
"""

from __future__ import annotations

import asyncio

import h11
import structlog
from uvicorn.protocols.http.h11_impl import H11Protocol

from emostream.settings import HttpServerOptions

log = structlog.get_logger(__name__)


class TimedH11Protocol(H11Protocol):
    """H11Protocol with a deadline per phase; ``limits`` is set by ``protocol_class``."""

    limits = HttpServerOptions()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._deadline: asyncio.TimerHandle | None = None
        self._phase = ""
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            log.debug("connection over the cap closed", cap=self.limits.max_connections)
            transport.close()
            return
        self._enter("idle")

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow(new_bytes=bool(data))

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow(new_bytes=bool(self.conn.trailing_data[0]))

    def connection_lost(self, exc: Exception | None) -> None:
        self._enter("")
        super().connection_lost(exc)

    def _follow(self, new_bytes: bool) -> None:
        """Arm the deadline of the phase the connection is now in (none while answering)."""
        if self.transport.is_closing() or self.transport.get_protocol() is not self:
            self._enter("")  # closed, or upgraded to a WebSocket
        elif self.conn.their_state is h11.IDLE:
            # Bytes of a request's headers are buffered: header phase; else waiting, idle.
            if new_bytes or self._phase == "header":
                self._enter("header")
            else:
                self._enter("idle")
        elif self.conn.their_state is h11.SEND_BODY:
            self._enter("body")
        else:  # the request is in: the application answers
            self._enter("")

    def _enter(self, phase: str) -> None:
        if phase == self._phase:
            return  # a phase's deadline runs from its start, however many bytes arrive
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._phase = phase
        if phase:
            limits = self.limits
            timeout = {
                "idle": limits.idle_timeout_s,
                "header": limits.header_timeout_s,
                "body": limits.body_timeout_s,
            }[phase]
            self._deadline = self.loop.call_later(timeout, self._expire, phase)

    def _expire(self, phase: str) -> None:
        self._deadline = None
        if self._phase != phase or self.transport.is_closing():
            return
        log.debug("connection timed out", phase=phase, client=self.client)
        self._phase = ""
        self.transport.close()


def protocol_class(limits: HttpServerOptions) -> type[TimedH11Protocol]:
    """The protocol class for one server's ``uvicorn.Config(http=...)``."""
    return type("TimedH11Protocol", (TimedH11Protocol,), {"limits": limits})
