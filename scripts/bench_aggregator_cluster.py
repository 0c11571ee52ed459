"""`emostream bench aggregator` against a loopback Redis Cluster (3 masters + 3 replicas, the
integration tests' ``RedisCluster6``), started for the run and stopped after it:

    .venv/bin/python scripts/bench_aggregator_cluster.py --replicas 3 --events 60000

Arguments go to the benchmark; it prints the benchmark's JSON.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for tests/

from tests.integration.redis_cluster import RedisCluster6  # noqa: E402


def main() -> int:
    with RedisCluster6() as cluster:
        argv = ["bench", "aggregator", "--json", "--redis-url", cluster.url, *sys.argv[1:]]
        return subprocess.run([sys.executable, "-m", "emostream.cli.main", *argv]).returncode


if __name__ == "__main__":
    sys.exit(main())
