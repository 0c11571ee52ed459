"""The worker and the aggregator as child processes on one environment (fault tests, soak)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from emostream.local.servers import ServiceProcess, free_port, settings_env
from emostream.settings import KafkaOptions, RedisOptions


def services_env(
    kafka: KafkaOptions, redis: RedisOptions, groups: str | None = None
) -> dict[str, str]:
    """The environment of services under test: their Kafka and Redis, JSON logs at WARNING;
    with ``groups``, the consumer groups ``<groups>-worker`` and ``<groups>-agg``."""
    env = (
        settings_env("kafka", kafka)
        | settings_env("redis", redis)
        | {"EMOSTREAM_LOG__LEVEL": "WARNING", "EMOSTREAM_LOG__JSON_OUTPUT": "true"}
    )
    if groups is not None:
        env["EMOSTREAM_WORKER__GROUP_ID"] = f"{groups}-worker"
        env["EMOSTREAM_AGGREGATOR__GROUP_ID"] = f"{groups}-agg"
    return env


def log_tails(procs: Iterable[ServiceProcess], lines: int = 40) -> str:
    """The last ``lines`` log lines of each process, headed by its name and exit status."""
    parts = []
    for proc in procs:
        if proc.log_path is not None and proc.log_path.exists():
            tail = proc.log_path.read_text(errors="replace").splitlines()[-lines:]
            parts.append("\n".join([f"--- {proc.name} (exit {proc.returncode}) ---", *tail]))
    return "\n".join(parts)


class ServicePair(NamedTuple):
    """Not started: ``worker.start(metrics_port)``, ``aggregator.start(api_port)``, or
    ``with pair.running():``."""

    worker: ServiceProcess
    aggregator: ServiceProcess
    metrics_port: int
    api_port: int

    @contextmanager
    def running(self, log_lines: int = 40) -> Iterator[ServicePair]:
        """Both started for the block and stopped after it. A failing block first prints each
        service's log tail: their own account, shown with the failure."""
        try:
            self.worker.start(self.metrics_port)
            self.aggregator.start(self.api_port)
            yield self
        except BaseException:
            print(log_tails((self.worker, self.aggregator), log_lines))
            raise
        finally:
            self.worker.stop()
            self.aggregator.stop()


def worker_and_aggregator(env: dict[str, str], log_dir: Path) -> ServicePair:
    """Both services on ``env`` plus a free port each (the worker's metrics, the API), logging
    to ``log_dir/worker.log`` and ``log_dir/aggregator.log``."""
    metrics_port, api_port = free_port(), free_port()
    worker_env = env | {"EMOSTREAM_WORKER__METRICS_PORT": str(metrics_port)}
    api_env = env | {"EMOSTREAM_API__PORT": str(api_port)}
    return ServicePair(
        ServiceProcess("worker", worker_env, log_dir / "worker.log"),
        ServiceProcess("aggregator", api_env, log_dir / "aggregator.log"),
        metrics_port,
        api_port,
    )
