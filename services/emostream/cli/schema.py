"""`emostream schema`: the JSON Schemas of the published messages."""

from __future__ import annotations

import argparse


def _cmd_schema(args: argparse.Namespace) -> int:
    from emostream.schemas import json_schemas_text

    print(json_schemas_text())
    return 0


def register(subparsers) -> None:
    """Add the `schema` sub-command."""
    s = subparsers.add_parser("schema", help="print the JSON Schemas of published messages")
    s.set_defaults(func=_cmd_schema)
