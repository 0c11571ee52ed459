"""Loopback only: a test that tries to resolve or connect to any other address fails at once.

Installed for every test by the autouse fixture in ``tests/conftest.py``. It patches name
resolution and ``socket.connect`` in-process (asyncio, httpx, aiokafka and redis-py all connect
through them), so nothing leaves the machine even when the code under test is wrong. Child
processes (brokers, services started by fault tests) are not covered; they are given loopback
addresses only.
"""

from __future__ import annotations

import ipaddress
import socket

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


class NonLoopbackRefused(OSError):
    """A test tried to reach beyond loopback."""


def is_loopback_host(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if not isinstance(host, str):
        return False
    name = host.strip("[]").split("%", 1)[0].lower().rstrip(".")
    if name in LOOPBACK_NAMES:
        return True
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def _check(host: object, what: str) -> None:
    if host is None:  # getaddrinfo(None, port): the wildcard, for a server's bind
        return
    if not is_loopback_host(host):
        raise NonLoopbackRefused(f"tests may only reach loopback; refused {what} to {host!r}")


class Guard:
    """Patches ``socket.getaddrinfo`` and ``socket.socket.connect``/``connect_ex``."""

    def __init__(self, monkeypatch) -> None:
        real_getaddrinfo = socket.getaddrinfo
        real_connect = socket.socket.connect
        real_connect_ex = socket.socket.connect_ex

        def getaddrinfo(host, *args, **kwargs):
            _check(host, "name resolution")
            return real_getaddrinfo(host, *args, **kwargs)

        def connect(sock, address):
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                _check(address[0], "a connection")
            return real_connect(sock, address)

        def connect_ex(sock, address):
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                _check(address[0], "a connection")
            return real_connect_ex(sock, address)

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
        monkeypatch.setattr(socket.socket, "connect", connect)
        monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
