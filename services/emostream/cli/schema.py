"""`emostream schema`: the JSON Schemas of the published messages, and their compatibility check."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _cmd_schema(args: argparse.Namespace) -> int:
    from emostream.schema_compat import check_snapshots, write_snapshots
    from emostream.schemas import json_schemas, json_schemas_text

    if args.write:
        for path in write_snapshots(json_schemas(), Path(args.write)):
            print(f"wrote {path}")
        return 0
    if args.check:
        problems = check_snapshots(json_schemas(), Path(args.check))
        for problem in problems:
            print(f"incompatible: {problem}", file=sys.stderr)
        if problems:
            print(
                "An incompatible change needs a new schema version (docs/EVENTS.md); after a "
                "compatible one, refresh the snapshots with --write.",
                file=sys.stderr,
            )
            return 1
        print(f"compatible with the snapshots in {args.check}")
        return 0
    print(json_schemas_text())
    return 0


def register(subparsers) -> None:
    """Add the `schema` sub-command."""
    s = subparsers.add_parser("schema", help="print the JSON Schemas of published messages")
    group = s.add_mutually_exclusive_group()
    group.add_argument(
        "--check",
        metavar="DIR",
        help="exit 1 if the schemas are incompatible with the snapshots in DIR "
        "(tests/schemas/events)",
    )
    group.add_argument("--write", metavar="DIR", help="write the snapshots to DIR")
    s.set_defaults(func=_cmd_schema)
