"""Idle, header and body timeouts and a connection cap on every HTTP server (issue 33, item 6):
idle, slow-loris and slow-body connections against real ingest and aggregator processes are
closed within their timeouts, while ``/livez`` and ``/healthz`` keep answering."""

from __future__ import annotations

import asyncio
import statistics
import time

import httpx
import pytest

from emostream.local.servers import ServiceProcess, free_port, port_open
from emostream.local.stack import services_env
from tests.integration.ingest_process import ingest_process
from tests.waiting import wait_until

pytestmark = pytest.mark.slow
IDLE_S = 5.0  # the default idle timeout: measured as it ships
SHORT_S = 2.0  # header and body timeouts, shortened for the test
SLACK_S = 2.5  # a loaded 2-core machine
ENV = {
    "EMOSTREAM_HTTP_SERVER__HEADER_TIMEOUT_S": str(SHORT_S),
    "EMOSTREAM_HTTP_SERVER__BODY_TIMEOUT_S": str(SHORT_S),
}
SLOW_HEADERS = b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n"
SLOW_BODY = (
    b"POST /v1/streams/slow/frames HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 99999\r\n\r\n"
)


async def lifetime(
    port: int, first: bytes = b"", trickle: bytes = b"", limit_s: float = 30
) -> float:
    """Seconds from connecting (or, after a ``first`` complete request, from its answer) until
    the server closes the connection, while sending ``trickle`` every 0.5 s; ``limit_s`` if the
    server never does."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    start = time.monotonic()
    writer.write(first)

    async def drip() -> None:
        while trickle:
            await asyncio.sleep(0.5)
            writer.write(trickle)

    dripping = asyncio.create_task(drip())
    try:
        while True:
            data = await asyncio.wait_for(reader.read(65536), limit_s)
            if not data:
                return time.monotonic() - start
            if first:  # the answer to a complete request: kept alive from here
                start = time.monotonic()
    except (ConnectionError, OSError):
        return time.monotonic() - start
    except TimeoutError:
        return limit_s
    finally:
        dripping.cancel()
        writer.close()


async def still_answers(url: str, path: str) -> None:
    async with httpx.AsyncClient(timeout=3) as client:
        for _ in range(3):
            assert (await client.get(url + path)).status_code == 200
            await asyncio.sleep(1)


def within(times: list[float], timeout_s: float) -> None:
    assert all(timeout_s - 0.3 <= t <= timeout_s + SLACK_S for t in times), (timeout_s, times)


async def test_ingest_servers_close_idle_and_slow_connections(kafka_settings, tmp_path):
    metrics = free_port()
    env = ENV | {"EMOSTREAM_INGEST__METRICS_PORT": str(metrics)}
    with ingest_process(kafka_settings, tmp_path, **env) as url:
        await wait_until(lambda: port_open(metrics), 30, "the metrics port", 0.1)
        ingest = int(url.rsplit(":", 1)[1])
        keep_alive = b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        checks = {
            "idle": [lifetime(ingest) for _ in range(30)] + [lifetime(metrics) for _ in range(10)],
            "kept alive": [lifetime(metrics, first=keep_alive) for _ in range(5)],
            "headers": [lifetime(p, SLOW_HEADERS, b"X-A: b\r\n") for p in (ingest, metrics) * 3],
            "body": [lifetime(ingest, SLOW_BODY, b"0123456789") for _ in range(5)],
        }
        tasks = {k: [asyncio.create_task(c) for c in v] for k, v in checks.items()}
        await still_answers(f"http://127.0.0.1:{metrics}", "/livez")
        found = {k: await asyncio.gather(*v) for k, v in tasks.items()}
    idle = found["idle"]
    print(
        f"idle connection lifetime: median {statistics.median(idle):.2f} s, max {max(idle):.2f} s"
    )
    within(found["idle"] + found["kept alive"], IDLE_S)
    within(found["headers"], SHORT_S)
    within(found["body"], SHORT_S)


async def test_aggregator_api_closes_idle_and_slow_connections(
    kafka_settings, redis_settings, tmp_path
):
    port = free_port()
    env = services_env(kafka_settings, redis_settings, "timeouts") | ENV
    aggregator = ServiceProcess("aggregator", env | {"EMOSTREAM_API__PORT": str(port)})
    aggregator.start(port)
    try:
        idle = [asyncio.create_task(lifetime(port)) for _ in range(20)]
        slow = [asyncio.create_task(lifetime(port, SLOW_HEADERS, b"X-A: b\r\n")) for _ in range(5)]
        await still_answers(f"http://127.0.0.1:{port}", "/healthz")
        within(await asyncio.gather(*idle), IDLE_S)
        within(await asyncio.gather(*slow), SHORT_S)
    finally:
        aggregator.stop()


async def test_connections_over_the_cap_are_closed_at_once(kafka_settings, tmp_path):
    metrics = free_port()
    env = {"EMOSTREAM_INGEST__METRICS_PORT": str(metrics)}
    env["EMOSTREAM_HTTP_SERVER__MAX_CONNECTIONS"] = "20"
    with ingest_process(kafka_settings, tmp_path, **env):
        await wait_until(lambda: port_open(metrics), 30, "the metrics port", 0.1)
        await asyncio.sleep(0.5)  # the probe's connection gone
        held = [asyncio.create_task(lifetime(metrics)) for _ in range(20)]
        await asyncio.sleep(1)
        over = await asyncio.gather(*(lifetime(metrics) for _ in range(5)))
        assert max(over) < 1.0, over  # closed as soon as accepted: no descriptor held
        within(await asyncio.gather(*held), IDLE_S)  # and the held ones time out
        await still_answers(f"http://127.0.0.1:{metrics}", "/livez")
