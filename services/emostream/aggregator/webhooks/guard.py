"""Where webhooks may connect: public addresses only, unless a network is explicitly allowed.

The check runs at connect time on the *resolved* address, and the connection is then made to
that very address (the name is not resolved twice), so a DNS answer that changes between a
check and the connect (DNS rebinding) cannot reach an internal service. Every spelling of an
internal address (``0``, ``2130706433``, ``127.1``, ``[::1]``, ``[::ffff:10.0.0.1]``) resolves
to one that is refused. A refused delivery says only that the destination is not allowed: the
delivery log never shows which internal ports answer, because none is ever tried.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]
REFUSED = "destination address not allowed"


def allowed(ip: IPAddress, allow: Iterable[IPNetwork]) -> bool:
    """Public (globally routable) addresses, and any in ``allow``."""
    mapped = getattr(ip, "ipv4_mapped", None) or ip
    if any(mapped in net or ip in net for net in allow):
        return True
    return mapped.is_global and not mapped.is_multicast


async def system_resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [info[4][0] for info in infos]


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to allowed resolved addresses."""

    def __init__(
        self,
        allow: Iterable[IPNetwork],
        inner: httpcore.AsyncNetworkBackend | None = None,
        resolve: Resolver = system_resolve,
    ) -> None:
        self.allow = [ipaddress.ip_network(str(net)) for net in allow]
        self.inner = inner or httpcore.AnyIOBackend()
        self.resolve = resolve

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await self.resolve(host.strip("[]"), port)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve the webhook host: {exc}") from None
        checked = [
            a for a in addresses if allowed(ipaddress.ip_address(a.split("%")[0]), self.allow)
        ]
        if not checked or len(checked) < len(addresses):
            # Any internal address among the answers refuses the lot: no mixing public and private.
            raise httpcore.ConnectError(
                f"{REFUSED} (not public; see EMOSTREAM_ALERTS__WEBHOOK_ALLOW_NETWORKS)"
            )
        return await self.inner.connect_tcp(
            checked[0],
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ):
        raise httpcore.ConnectError("webhooks do not connect to Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def guarded_transport(
    allow: Iterable[IPNetwork],
    resolve: Resolver = system_resolve,
    inner: httpcore.AsyncNetworkBackend | None = None,
) -> httpx.AsyncHTTPTransport:
    """httpx's own transport with the guarded backend underneath (TLS still verifies the name)."""
    transport = httpx.AsyncHTTPTransport(retries=0)
    transport._pool._network_backend = GuardedBackend(allow, inner, resolve)  # no public hook
    return transport
