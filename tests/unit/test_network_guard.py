"""The suite-wide guard: tests cannot resolve or connect beyond loopback (nothing is sent)."""

import socket

import httpx
import pytest

from tests.network_guard import NonLoopbackRefused, is_loopback_host


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.9.9.9", "::1", "[::1]", "localhost", "::ffff:127.0.0.1"]
)
def test_loopback_spellings_pass(host):
    assert is_loopback_host(host)


@pytest.mark.parametrize(
    "host",
    ["10.0.0.1", "169.254.169.254", "example.com", "0.0.0.0", "2130706433x", "fe80::1", "::"],
)
def test_everything_else_is_not_loopback(host):
    assert not is_loopback_host(host)


def test_resolution_and_connects_beyond_loopback_raise_before_any_packet():
    with pytest.raises(NonLoopbackRefused):
        socket.getaddrinfo("example.invalid", 80)
    with socket.socket() as s, pytest.raises(NonLoopbackRefused):
        s.connect(("192.0.2.1", 80))  # TEST-NET-1; refused in-process before connect(2)


async def test_async_clients_are_refused_too():
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.ConnectError) as info:
            await client.get("http://192.0.2.1:9/")
    causes, exc = [], info.value
    while exc is not None:
        causes.append(exc)
        exc = exc.__cause__ or exc.__context__
    assert any(isinstance(e, NonLoopbackRefused) for e in causes), causes
