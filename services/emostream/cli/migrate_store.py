"""`emostream migrate-store`: move the aggregator's Redis data of an older key layout into the
current one (``emostream.aggregator.state.migrate``), with the aggregators stopped."""

from __future__ import annotations

import argparse
import asyncio
import json


def _cmd_migrate_store(args: argparse.Namespace) -> int:
    from emostream.cli.env_check import load_settings
    from emostream.config import AggregatorSettings

    return asyncio.run(_migrate(load_settings(AggregatorSettings)))


async def _migrate(settings) -> int:
    from emostream.aggregator.state.connect import connect
    from emostream.aggregator.state.migrate import migrate_store

    client, cluster = await connect(settings.redis.url.get_secret_value(), decode_responses=True)
    try:
        if cluster:  # the older layout never ran on a cluster: nothing to move
            print(json.dumps({"streams": 0, "index_entries": 0, "delivery_logs": 0}))
            return 0
        moved = await migrate_store(client, settings.redis.key_prefix, settings.aggregator)
    finally:
        await client.aclose()
    print(json.dumps(moved))
    return 0


def register(subparsers) -> None:
    """Add `migrate-store`."""
    s = subparsers.add_parser(
        "migrate-store",
        help="move the aggregator's Redis data of an older key layout into the current one "
        "(EMOSTREAM_REDIS__*, aggregators stopped)",
    )
    s.set_defaults(func=_cmd_migrate_store, log_level="WARNING")
