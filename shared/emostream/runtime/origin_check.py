"""Browser-facing checks (ASGI middleware): WebSocket Origin, and Host in keyless mode.

A web page in any browser can open a WebSocket to ``127.0.0.1:8000`` (WebSockets are not
subject to CORS) and, through DNS rebinding, make HTTP requests whose ``Host`` is its own name.
So a WebSocket whose ``Origin`` is another site is refused (1008 before it is accepted, seen
by the browser as a failed handshake), and without API keys requests must name this machine
in ``Host`` (``localhost``, a loopback address, or the bind address).
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from emostream.runtime.api_keys import is_loopback


def _host_only(host_header: str) -> str:
    """``Host`` header -> host name, without port or IPv6 brackets, lower case."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_local_host(host: str, bind_host: str | None = None) -> bool:
    """Whether a ``Host`` header names this machine.

    Args:
        host: The header's value, port and IPv6 brackets included.
        bind_host: The address the server binds to, which also counts as this machine.

    Returns:
        True for ``localhost``, a loopback address or ``bind_host`` (no name lookup).
    """
    name = _host_only(host)
    return is_loopback(name) or bool(bind_host and name == _host_only(bind_host))


class BrowserChecks:
    """Refuse cross-site WebSockets always; with ``local_hosts_only``, non-local ``Host``s too.

    Args:
        app: The ASGI app behind the checks.
        local_hosts_only: Answer only requests whose ``Host`` is this machine (keyless mode).
        bind_host: The server's bind address, accepted as this machine's name.
        allowed_origins: Other origins (exact, e.g. the ingest capture page) whose pages may
            open WebSockets here.
    """

    def __init__(
        self,
        app,
        local_hosts_only: bool,
        bind_host: str | None = None,
        allowed_origins: list[str] | tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.local_hosts_only = local_hosts_only
        self.bind_host = bind_host
        # Other pages trusted to open WebSockets here (the ingest capture page): exact origins.
        self.allowed_origins = {o.strip().rstrip("/").lower() for o in allowed_origins}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host", "")
        if self.local_hosts_only and not is_local_host(host, self.bind_host):
            return await self._refuse(
                scope,
                send,
                421,
                f"host {host[:100]!r} is not this "
                "machine (keyless mode answers loopback names only)",
            )
        origin = headers.get("origin")
        if scope["type"] == "websocket" and origin is not None:  # "null" (sandboxed) too
            same_site = urlsplit(origin).netloc.lower() == host.lower()
            if not same_site and origin.strip().rstrip("/").lower() not in self.allowed_origins:
                return await self._refuse(scope, send, 403, "cross-site WebSocket refused")
        return await self.app(scope, receive, send)

    @staticmethod
    async def _refuse(scope, send, status: int, detail: str) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": detail[:120]})
            return
        body = json.dumps({"detail": detail}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
