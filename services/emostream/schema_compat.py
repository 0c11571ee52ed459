"""Compatibility of published JSON Schemas with committed snapshots (docs/EVENTS.md).

A change is compatible when consumers built on the snapshot still read new messages and new
consumers still read the messages already on the topics (Kafka keeps history). Incompatible,
reported by ``incompatibilities``: a field removed, a required field made optional, a new
required field, a changed type or format, an enum (or const) narrowed or widened. New optional
fields are compatible: the published schemas accept unknown fields.

``emostream schema --check DIR`` compares ``emostream schema`` with ``DIR/<Message>.json``;
``--write DIR`` refreshes the snapshots after a compatible change.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

Schema = dict[str, Any]


def _resolve(node: Schema, defs: Schema) -> Schema:
    while "$ref" in node:
        node = defs[node["$ref"].rsplit("/", 1)[-1]]
    return node


def _alternatives(node: Schema, defs: Schema) -> list[Schema]:
    node = _resolve(node, defs)
    if "anyOf" in node or "oneOf" in node:
        return [_resolve(a, defs) for a in node.get("anyOf", node.get("oneOf"))]
    return [node]


def _values(alts: list[Schema]) -> set | None:
    """The allowed values when every alternative is an enum or const (or null), else None."""
    found: set = set()
    for a in alts:
        if "enum" in a:
            found.update(json.dumps(v) for v in a["enum"])
        elif "const" in a:
            found.add(json.dumps(a["const"]))
        elif a.get("type") == "null":
            found.add("null")
        else:
            return None
    return found


def _types(alts: list[Schema]) -> set[str]:
    found = set()
    for a in alts:
        kind = a.get("type", "object" if "properties" in a else "any")
        for t in kind if isinstance(kind, list) else [kind]:
            found.add(f"{t}:{a['format']}" if "format" in a else t)
    return found


def _compare(old: Schema, new: Schema, path: str, defs: tuple[Schema, Schema], out: list) -> None:
    old_alts, new_alts = _alternatives(old, defs[0]), _alternatives(new, defs[1])
    old_values, new_values = _values(old_alts), _values(new_alts)
    if old_values is not None and new_values is not None:
        if new_values < old_values:
            out.append(f"{path}: enum narrowed, {sorted(old_values - new_values)} removed")
        elif new_values > old_values:
            out.append(f"{path}: enum widened, {sorted(new_values - old_values)} added")
        elif new_values != old_values:
            out.append(f"{path}: enum changed: {sorted(old_values)} -> {sorted(new_values)}")
        return
    if _types(old_alts) != _types(new_alts):
        out.append(
            f"{path}: type changed: {sorted(_types(old_alts))} -> {sorted(_types(new_alts))}"
        )
        return
    if len(old_alts) != len(new_alts):
        out.append(f"{path}: alternatives changed: {len(old_alts)} -> {len(new_alts)}")
        return
    # Same shape: pair the alternatives (Optional[Model] is one object and null) in order.
    for o, n in zip(old_alts, new_alts, strict=True):
        if "properties" in o or "properties" in n:
            _compare_objects(o, n, path, defs, out)
        for key in ("items", "additionalProperties", "propertyNames"):
            if isinstance(o.get(key), dict) and isinstance(n.get(key), dict):
                _compare(o[key], n[key], f"{path}.<{key}>", defs, out)


def _compare_objects(old: Schema, new: Schema, path: str, defs: tuple, out: list) -> None:
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    old_req, new_req = set(old.get("required", [])), set(new.get("required", []))
    for name in old_props:
        where = f"{path}.{name}"
        if name not in new_props:
            out.append(f"{where}: field removed")
            continue
        if name in old_req and name not in new_req:
            out.append(f"{where}: required field made optional")
        _compare(old_props[name], new_props[name], where, defs, out)
    for name in sorted(set(new_props) - set(old_props)):
        if name in new_req:
            out.append(f"{path}.{name}: new required field")


def incompatibilities(old: Schema, new: Schema, name: str = "$") -> list[str]:
    """What makes ``new`` incompatible with ``old`` (both JSON Schemas with their ``$defs``);
    empty when ``new`` is a compatible evolution of ``old``."""
    out: list[str] = []
    _compare(old, new, name, (old.get("$defs", {}), new.get("$defs", {})), out)
    return out


def check_snapshots(current: dict[str, Schema], snapshots: Path) -> list[str]:
    """Every incompatibility of ``current`` with the ``<Message>.json`` files in ``snapshots``;
    a snapshotted message that is no longer published is one too."""
    problems = []
    for path in sorted(snapshots.glob("*.json")):
        if path.stem not in current:
            problems.append(f"{path.stem}: no longer published")
            continue
        problems += incompatibilities(json.loads(path.read_text()), current[path.stem], path.stem)
    return problems


def write_snapshots(current: dict[str, Schema], snapshots: Path) -> list[Path]:
    """Write ``<Message>.json`` for every published message (sorted keys, stable diffs)."""
    snapshots.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in current.items():
        path = snapshots / f"{name}.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written
