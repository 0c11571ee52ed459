"""The worker and the aggregator against Kafka over TLS: a TLS-terminating proxy on loopback in
front of the local broker (which advertises the proxy's port), with a CA made by the test.
Events flow; with a wrong CA each service exits within 30 s with one line naming the setting."""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
import sys
import threading
import time

import httpx
import pytest

from emostream.config import IngestOptions
from emostream.ingest import Ingest
from emostream.local.servers import (
    ServiceProcess,
    TansuBroker,
    free_port,
    settings_env,
    tansu_binary,
)
from emostream.local.topics import run_topics
from emostream.settings import KafkaOptions
from tests.integration.aggregator_process import aggregator_process
from tests.tls_certs import make_pki
from tests.waiting import wait_until

pytestmark = pytest.mark.slow
N_FRAMES = 10


class TlsProxy:
    """Terminates TLS on 127.0.0.1 and forwards the plain bytes to ``upstream_port``.

    Runs its own event loop in a thread, so that the test may block (starting child processes)
    while clients talk through it.
    """

    def __init__(self, cert, key) -> None:
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.load_cert_chain(cert, key)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task] = set()
        self.port = 0
        self.upstream_port = 0
        self.connections = 0

    def start(self) -> TlsProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self._context), self._loop
        ).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _handle(self, reader, writer) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return

        async def pipe(src, dst) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, ssl.SSLError):
                pass
            finally:
                dst.close()

        tasks = {
            asyncio.create_task(pipe(reader, up_writer)),
            asyncio.create_task(pipe(up_reader, writer)),
        }
        self._pipes |= tasks
        await asyncio.gather(*tasks, return_exceptions=True)
        self._pipes -= tasks

    def stop(self) -> None:
        async def close() -> None:
            self._server.close()
            for task in list(self._pipes):
                task.cancel()
            await asyncio.sleep(0)

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


class AdvertisedTansu(TansuBroker):
    """Tansu listening on one port and advertising another (the proxy's) to clients."""

    def start_behind(self, advertised_port: int) -> AdvertisedTansu:
        port = free_port()
        self._spawn(
            [
                str(tansu_binary()),
                "broker",
                "--listener-url",
                f"tcp://127.0.0.1:{port}",
                "--advertised-listener-url",
                f"tcp://127.0.0.1:{advertised_port}",
                "--storage-engine",
                "memory://tansu/",
            ],
            port,
            timeout_s=15,
        )
        return self


@pytest.fixture
def pki(tmp_path):
    return make_pki(tmp_path / "pki")


@pytest.fixture
def tls_broker(pki):
    """(proxy, broker): clients reach the broker only through the proxy's TLS port."""
    proxy = TlsProxy(pki.server_cert, pki.server_key).start()
    broker = AdvertisedTansu().start_behind(proxy.port)
    proxy.upstream_port = broker.port
    try:
        yield proxy, broker
    finally:
        broker.stop()
        proxy.stop()


def tls_settings(proxy: TlsProxy, ca, tag: str) -> KafkaOptions:
    return KafkaOptions(
        bootstrap_servers=f"127.0.0.1:{proxy.port}",
        security_protocol="SSL",
        ssl_ca_file=str(ca),
        **run_topics(tag),
        topic_partitions=2,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )


def worker_env(kafka: KafkaOptions, tag: str, metrics_port: int) -> dict[str, str]:
    return settings_env("kafka", kafka) | {
        "EMOSTREAM_WORKER__GROUP_ID": f"tls-worker-{tag}",
        "EMOSTREAM_WORKER__METRICS_PORT": str(metrics_port),
        "EMOSTREAM_WORKER__MAX_BATCH_FRAMES": "4",
        "EMOSTREAM_WORKER__TRACK_MIN_HITS": "1",  # every frame's face is an event
        "EMOSTREAM_MODEL__THREADS": "1",
        "EMOSTREAM_LOG__LEVEL": "WARNING",
    }


@pytest.mark.timeout(400)
async def test_worker_and_aggregator_over_tls(tls_broker, pki, redis_settings, tmp_path):
    proxy, _ = tls_broker
    tag = redis_settings.key_prefix
    kafka = tls_settings(proxy, pki.ca, tag)
    api_port = free_port()
    aggregator = aggregator_process(
        kafka, redis_settings, api_port, tmp_path, **settings_env("kafka", kafka)
    )
    worker = ServiceProcess(
        "worker", worker_env(kafka, tag, free_port()), log_path=tmp_path / "worker.log"
    )
    try:
        # Blocking starts: the proxy serves from its own thread meanwhile.
        await asyncio.to_thread(aggregator.start, api_port, 120.0)
        await asyncio.to_thread(
            worker.start, int(worker.env["EMOSTREAM_WORKER__METRICS_PORT"]), 180.0
        )
        async with Ingest(
            kafka, IngestOptions(source="sample", stream_id="tls-cam", fps=50, max_frames=N_FRAMES)
        ) as ingest:
            await ingest.run()
        assert ingest.sent == N_FRAMES and ingest.failed == 0

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}") as client:

            async def all_frames():
                r = await client.get("/v1/streams/tls-cam/events", params={"limit": 100})
                if r.status_code != 200:
                    return None
                seqs = {e["frame_seq"] for e in r.json()["events"]}
                return seqs if seqs == set(range(N_FRAMES)) else None

            assert await wait_until(all_frames, 120.0, interval_s=0.5)
        assert proxy.connections >= 4  # ingest, worker and aggregator all came through TLS
    finally:
        await asyncio.to_thread(worker.stop)
        await asyncio.to_thread(aggregator.stop)
    logs = (tmp_path / "worker.log").read_text() + (tmp_path / "aggregator.log").read_text()
    assert "Traceback" not in logs


@pytest.mark.timeout(200)
async def test_wrong_ca_stops_each_service_with_one_line(tls_broker, pki, redis_settings, tmp_path):
    proxy, _ = tls_broker
    tag = redis_settings.key_prefix
    kafka = tls_settings(proxy, pki.other_ca, tag)  # a CA that did not sign the proxy's cert
    base = {k: v for k, v in os.environ.items() if not k.startswith("EMOSTREAM_")}
    envs = {
        "worker": worker_env(kafka, tag, free_port()),
        "aggregator": aggregator_process(
            kafka, redis_settings, free_port(), tmp_path, **settings_env("kafka", kafka)
        ).env,
    }

    def run(command: str) -> tuple[float, subprocess.CompletedProcess]:
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "emostream.cli.main", command],
            env=base | envs[command],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
        )
        return time.monotonic() - started, done

    results = await asyncio.gather(*(asyncio.to_thread(run, c) for c in envs))
    for command, (elapsed_s, done) in zip(envs, results):
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert done.returncode != 0, command
        assert elapsed_s < 30, (command, elapsed_s)
        assert len(lines) == 1, (command, done.stderr)
        line = lines[0]
        assert line.startswith(
            f"emostream {command}: error: Kafka TLS handshake with 127.0.0.1:{proxy.port} failed"
        ), line
        assert "certificate is not trusted" in line and "EMOSTREAM_KAFKA__SSL_CA_FILE" in line
        assert str(pki.other_ca) in line
    assert proxy.connections == 0  # refused at the handshake: nothing reached the broker


class AuthenticatingTansu(TansuBroker):
    """Tansu requiring SASL authentication (it knows no users, so every login is refused)."""

    extra_args = ("--authentication",)


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
async def test_refused_sasl_login_is_one_config_error(mechanism):
    from pydantic import SecretStr

    from emostream.errors import ConfigError
    from emostream.kafka.security import check_connection

    with AuthenticatingTansu() as broker:
        kafka = KafkaOptions(
            bootstrap_servers=broker.bootstrap,
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism=mechanism,
            sasl_username=SecretStr("nobody"),
            sasl_password=SecretStr("wrong-password"),
        )
        started = time.monotonic()
        with pytest.raises(ConfigError, match="refused the SASL login") as err:
            await check_connection(kafka, timeout_s=10)
    assert time.monotonic() - started < 15
    line = str(err.value)
    assert f"EMOSTREAM_KAFKA__SASL_MECHANISM={mechanism}" in line and "\n" not in line
    assert "wrong-password" not in line
