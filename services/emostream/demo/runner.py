"""`emostream demo`: broker, Redis, ingest, worker and aggregator in one process; a clean exit."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from contextlib import AsyncExitStack, ExitStack

import redis.asyncio as aioredis
import structlog
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from emostream.aggregator.api import service_app
from emostream.aggregator.api.auth import API_KEYS_SETTING
from emostream.aggregator.api.metrics_endpoint import metrics_server
from emostream.aggregator.consumer import EventConsumer
from emostream.aggregator.state.store import EventStore
from emostream.config import AlertOptions, DemoSettings, IngestOptions
from emostream.demo.capture import capture_options, capture_server, trust_capture_page
from emostream.ingest.runner import Ingest
from emostream.ingest.sources import probe_source
from emostream.kafka.clients import ensure_topics
from emostream.local.servers import RedisServer, TansuBroker
from emostream.runtime.api_keys import check_bind
from emostream.runtime.lifecycle import ApiServer, check_port_free, install_stop_handlers
from emostream.runtime.secret_check import refuse_placeholder_secrets
from emostream.settings import RedisOptions
from emostream.webhooks import new_secret
from emostream.worker.main import build_processor
from emostream.worker.runner import Worker

log = structlog.get_logger(__name__)


async def _reachable(url: str) -> bool:
    client = aioredis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        return bool(await client.ping())
    except Exception:  # noqa: BLE001 - any failure means "not usable"
        return False
    finally:
        await client.aclose()


async def _delete_prefix(url: str, prefix: str) -> None:
    client = aioredis.from_url(url)
    try:
        async for key in client.scan_iter(match=f"{prefix}:*", count=500):
            await client.delete(key)
    finally:
        await client.aclose()


def _host(url: str) -> str:
    return RedisOptions(url=SecretStr(url)).host()


PORT_FIX = "pass --api-port N (make demo PORT=N) or stop what listens there"


def demo_log_level(configured: str, quiet: bool, verbose: bool, tty: bool) -> str:
    """In a terminal the progress line is the output: per-batch logs only with -v (or off a TTY)."""
    if verbose:
        return configured
    if quiet or tty:
        return "WARNING"
    return configured


def _say(text: str) -> None:
    """Lines a user needs even with --quiet (addresses, keys), on stderr."""
    print(f"emostream demo: {text}", file=sys.stderr, flush=True)


async def _redis(
    settings: DemoSettings, external: str | None, procs: ExitStack
) -> tuple[RedisOptions, bool]:
    """REDIS_URL when it answers (our keys under a fresh prefix: True), else our redis-server."""
    if settings.redis_mode != "embedded" and external and await _reachable(external):
        # Someone else's Redis: keep our keys under a unique prefix and remove them at the end.
        prefix = f"{settings.redis.key_prefix}:demo:{uuid.uuid4().hex[:8]}"
        redis_settings = settings.redis.model_copy(
            update={"url": SecretStr(external), "key_prefix": prefix}
        )
        log.info("using Redis at REDIS_URL", key_prefix=prefix)
        return redis_settings, True
    server = procs.enter_context(RedisServer())
    return settings.redis.model_copy(update={"url": SecretStr(server.url)}), False


async def _supervise(
    tasks: list[asyncio.Task],
    stop: asyncio.Event,
    started: float,
    duration_s: float | None,
    ingest: Ingest,
    worker: Worker,
    consumer: EventConsumer,
) -> bool:
    """Show progress until Ctrl-C, ``duration_s`` or a component stops; True if one failed.

    ``tasks`` are the aggregator's, the worker's and ingest's, in that order. Ingest may end (a
    file source with --once) while the API keeps serving.
    """
    ingest_ended = False
    while not stop.is_set():
        done = [t for t in tasks if t.done() and t.get_name() != "ingest"]
        ingest_task = tasks[2]
        if ingest_task.done() and not ingest_ended:
            ingest_ended = True
            error = ingest_task.exception()
            if error is not None:
                _say(f"error: ingest stopped: {error}")
                return True
            _say(f"source ended after {ingest.seq} frames; the API keeps serving until Ctrl-C")
        if done:
            log.error(
                "component stopped",
                component=done[0].get_name(),
                error=repr(done[0].exception()),
            )
            return True
        elapsed = time.monotonic() - started
        if duration_s is not None and elapsed >= duration_s:
            return False
        _summary(elapsed, ingest, worker, consumer)
        try:
            await asyncio.wait_for(stop.wait(), timeout=1.0)
        except TimeoutError:
            pass
    return False


async def _serve_api(
    stack: AsyncExitStack,
    settings: DemoSettings,
    ingest_opts: IngestOptions,
    store: EventStore,
    consumer: EventConsumer,
    alerts: AlertOptions,
) -> None:
    """Start the demo's HTTP API on ``stack`` and say where it is and which keys apply."""
    api_opts = trust_capture_page(settings.api, ingest_opts)
    keys = [*api_opts.read_keys, *api_opts.admin_keys]
    check_bind(api_opts.host, keys, "the API", API_KEYS_SETTING)
    app = service_app(store, consumer, api_opts, alerts)
    stack.push_async_callback(app.state.live_hub.stop)
    await stack.enter_async_context(
        ApiServer(
            app,
            settings.api.host,
            settings.api.port,
            "demo API",
            PORT_FIX,
            limits=settings.http_server,
        )
    )
    await stack.enter_async_context(
        metrics_server(api_opts.metrics, consumer, limits=settings.http_server)
    )
    api = f"http://{settings.api.host}:{settings.api.port}"
    _say(f"API on {api}  (try {api}/v1/streams)")
    _say_keys(api_opts.read_keys, api_opts.admin_keys)


async def _wind_down(
    tasks: list[asyncio.Task], ingest: Ingest, worker: Worker, consumer: EventConsumer
) -> None:
    """Ask every component to stop (ingest first), wait a bounded time, cancel the rest."""
    for comp in (ingest, worker, consumer):
        comp.request_stop()
    await asyncio.wait(tasks, timeout=15)
    for t in tasks:
        if not t.done():
            t.cancel()


class ExternalRedisSettings(BaseSettings):
    """``REDIS_URL`` (the usual name, no prefix): a Redis the demo uses when it answers."""

    model_config = SettingsConfigDict(extra="ignore")
    redis_url: SecretStr | None = None


async def run_demo(settings: DemoSettings, duration_s: float | None, once: bool = False) -> int:
    started = time.monotonic()
    stop = asyncio.Event()
    install_stop_handlers(stop.set)
    # Checked before anything starts: a bad source or a taken port is one line, not a traceback.
    check_port_free(settings.api.host, settings.api.port, "demo API", PORT_FIX)
    external_url = ExternalRedisSettings().redis_url
    external = external_url.get_secret_value() if external_url else None
    redis_hosts = [] if settings.redis_mode == "embedded" or not external else [_host(external)]
    refuse_placeholder_secrets(settings, [*settings.reached_hosts(), *redis_hosts])
    await asyncio.to_thread(probe_source, settings.ingest.source)
    with ExitStack() as procs:
        broker = procs.enter_context(TansuBroker())
        kafka = settings.kafka.model_copy(update={"bootstrap_servers": broker.bootstrap})
        redis_settings, own_prefix = await _redis(settings, external, procs)
        redis_shown = (
            f"REDIS_URL (keys under {redis_settings.key_prefix})"
            if own_prefix
            else redis_settings.url.get_secret_value()
        )
        _say(f"Kafka broker on {broker.bootstrap}, Redis on {redis_shown}")
        await ensure_topics(kafka)
        processor = build_processor(settings)  # DemoSettings is a WorkerSettings
        # Files and folders loop (a demo keeps streaming) unless --once.
        ingest_opts = settings.ingest.model_copy(update={"loop": not once})
        ingest_opts = capture_options(ingest_opts, settings.api)  # frames over HTTP, /capture
        async with AsyncExitStack() as stack:
            # The API reads through one pool, the consumer writes through its own (as the
            # aggregator service does), so live viewers can never starve event storage.
            retention = settings.aggregator
            store = await stack.enter_async_context(EventStore(redis_settings, retention))
            writer = await stack.enter_async_context(EventStore(redis_settings, retention))
            alerts = _with_webhook_secret(settings.alerts)
            consumer = EventConsumer(kafka, settings.aggregator, writer, alerts)
            worker = Worker(kafka, settings.worker, processor)
            ingest = Ingest(kafka, ingest_opts)
            # The API answers first; the Kafka clients join their groups concurrently.
            await _serve_api(stack, settings, ingest_opts, store, consumer, alerts)
            capture = capture_server(kafka, ingest_opts, _say, settings.http_server)
            await stack.enter_async_context(capture)
            for comp in (consumer, worker, ingest):
                stack.push_async_callback(comp.stop)
            await asyncio.gather(consumer.start(), worker.start(), ingest.start())
            if not processor.model_info.trained:
                print("WARNING: UNTRAINED MODEL - emotions are random", file=sys.stderr, flush=True)
            named = ((consumer, "aggregator"), (worker, "worker"), (ingest, "ingest"))
            tasks = [asyncio.create_task(c.run(), name=n) for c, n in named]
            try:
                failed = await _supervise(
                    tasks, stop, started, duration_s, ingest, worker, consumer
                )
            finally:
                await _wind_down(tasks, ingest, worker, consumer)
                _summary(time.monotonic() - started, ingest, worker, consumer, final=True)
            if own_prefix:
                await _delete_prefix(external, redis_settings.key_prefix)
    return 1 if failed else 0


def _with_webhook_secret(alerts: AlertOptions) -> AlertOptions:
    """Rules with a webhook need a signing secret: the demo makes one, so the README's rule
    example works as pasted, and prints it for the receiver to verify signatures with."""
    if alerts.webhook_secret is not None:
        return alerts
    secret = new_secret()  # whsec_<base64>: what Standard Webhooks verifiers take as is
    _say(
        f"webhook signing secret for this run: {secret}  (set EMOSTREAM_ALERTS__WEBHOOK_SECRET "
        "to choose one)"
    )
    return alerts.model_copy(update={"webhook_secret": SecretStr(secret)})


def _say_keys(read_keys: list, admin_keys: list) -> None:
    """API keys from the environment or .env apply to the demo too: say so, or every curl is 401."""
    if not (read_keys or admin_keys):
        return
    _say(
        f"API keys in force (EMOSTREAM_API__READ_KEYS/__ADMIN_KEYS, from the environment or "
        f".env): {len(read_keys)} read, {len(admin_keys)} admin; send them as X-API-Key, "
        "or unset them for an open loopback demo"
    )


def _summary(
    elapsed: float, ingest: Ingest, worker: Worker, consumer: EventConsumer, final: bool = False
) -> None:
    line = (
        f"[{elapsed:5.1f}s] frames sent {ingest.sent}  processed {worker.frames}  "
        f"events {worker.events}  stored {consumer.stored}  dead letters {worker.dead_letters}"
    )
    if sys.stdout.isatty() and not final:
        print("\r" + line, end="", flush=True)
    else:
        print(line, flush=True)
