"""The demo's ingest HTTP server: frames over HTTP and the ``/capture`` page, next to the API."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from emostream.config import ApiOptions, IngestOptions
from emostream.ingest.http_server import ingest_http_server, server_url
from emostream.settings import HttpServerOptions, KafkaOptions


def _free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _any_free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def capture_options(ingest: IngestOptions, api: ApiOptions) -> IngestOptions:
    """Ingest HTTP on the configured port, else the API port + 1 (any free port if taken)."""
    http = ingest.http
    port = http.port
    if not port:
        wanted = api.port + 1
        port = wanted if wanted <= 65535 and _free(http.host, wanted) else _any_free_port(http.host)
    api_host = f"[{api.host}]" if ":" in api.host else api.host
    update = {"port": port, "aggregator_url": f"http://{api_host}:{api.port}"}
    return ingest.model_copy(update={"http": http.model_copy(update=update)})


def trust_capture_page(api: ApiOptions, ingest: IngestOptions) -> ApiOptions:
    """The API's live WebSocket accepts the capture page's origin (and its localhost alias)."""
    origins = [server_url(ingest)]
    if ingest.http.host in ("127.0.0.1", "::1"):
        origins.append(f"http://localhost:{ingest.http.port}")
    return api.model_copy(update={"browser_origins": [*api.browser_origins, *origins]})


@asynccontextmanager
async def capture_server(
    kafka: KafkaOptions,
    ingest: IngestOptions,
    say: Callable[[str], None],
    limits: HttpServerOptions | None = None,
) -> AsyncIterator[None]:
    async with ingest_http_server(kafka, ingest, "demo ingest HTTP", limits):
        say(f"capture page on {server_url(ingest)}/capture  (your camera through the pipeline)")
        yield
