"""Every phase of an HTTP connection has a deadline (issue 33, item 6): an in-process server with
short timeouts; the same with real processes in tests/integration/test_server_timeouts.py."""

from __future__ import annotations

import asyncio
import time

from fastapi import FastAPI, Request

from emostream.local.servers import free_port
from emostream.runtime.lifecycle import ApiServer
from emostream.settings import HttpServerOptions

LIMITS = HttpServerOptions(
    idle_timeout_s=0.4, header_timeout_s=0.8, body_timeout_s=0.8, max_connections=10
)


def app() -> FastAPI:
    api = FastAPI()

    @api.get("/ok")
    async def ok() -> dict:
        return {"ok": True}

    @api.post("/echo")
    async def echo(request: Request) -> dict:
        return {"bytes": len(await request.body())}

    return api


async def closed_after(port: int, first: bytes = b"", trickle: bytes = b"") -> tuple[float, bytes]:
    """Seconds until the server closes (sending ``trickle`` every 0.1 s), and what it sent."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    start, got = time.monotonic(), b""
    writer.write(first)

    async def drip() -> None:
        while trickle:
            await asyncio.sleep(0.1)
            writer.write(trickle)

    dripping = asyncio.create_task(drip())
    try:
        while data := await asyncio.wait_for(reader.read(65536), 10):
            got += data
    except ConnectionError:
        pass
    finally:
        dripping.cancel()
        writer.close()
    return time.monotonic() - start, got


async def test_idle_slow_header_and_slow_body_connections_are_closed_in_time():
    port = free_port()
    async with ApiServer(app(), "127.0.0.1", port, limits=LIMITS):
        idle, loris, body, kept, fine = await asyncio.gather(
            closed_after(port),
            closed_after(port, b"GET /ok HTTP/1.1\r\n", b"X-A: b\r\n"),
            closed_after(
                port, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 9999\r\n\r\n", b"x"
            ),
            closed_after(port, b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n"),
            closed_after(port, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"),
        )
    assert 0.35 < idle[0] < 1.5
    assert 0.75 < loris[0] < 2.0 and loris[1] == b""  # the trickle never made it a request
    assert 0.75 < body[0] < 2.0
    assert b'{"ok":true}' in kept[1] and 0.35 < kept[0] < 1.5  # answered, then idle
    assert b'{"bytes":3}' in fine[1]


async def test_connections_over_the_cap_are_closed_when_accepted():
    port = free_port()
    async with ApiServer(app(), "127.0.0.1", port, limits=LIMITS):
        held = [asyncio.create_task(closed_after(port)) for _ in range(10)]
        await asyncio.sleep(0.1)
        over = await closed_after(port)
        assert over[0] < 0.2
        assert all(0.35 < t < 1.5 for t, _ in await asyncio.gather(*held))
