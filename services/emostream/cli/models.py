"""`emostream models list|info|pull`."""

from __future__ import annotations

import json
from pathlib import Path

from emostream.cli.model_cache import hub_url
from emostream.models.checkpoint import DEFAULT_CHECKPOINT, load_checkpoint
from emostream.models.hub import OFFICIAL_FILES, cache_dir, pull
from emostream.models.registry import get_spec, list_specs


def _describe(name_or_path: str) -> dict:
    path = Path(name_or_path)
    if path.is_file():
        model = load_checkpoint(path)
        net, pre = model.net, model.preprocessing
        info = {
            "name": model.name,
            "version": model.version,
            "trained": model.trained,
            "path": str(path),
            "file_mb": round(path.stat().st_size / 1e6, 2),
        }
    else:
        spec = get_spec(name_or_path)
        net, pre = spec.build(), spec.preprocessing
        info = {"name": spec.name, "description": spec.description}
    info.update(
        config=net.config.to_dict(),
        preprocessing=pre.to_dict(),
        params_m=round(sum(p.numel() for p in net.parameters()) / 1e6, 3),
    )
    return info


def run_models(args) -> int:
    if args.models_command == "list":
        cache = cache_dir()
        rows = [
            {"name": s.name, "input_size": s.preprocessing.input_size, "description": s.description}
            for s in list_specs()
        ]
        files = {f.filename: (cache / f.filename).exists() for f in OFFICIAL_FILES}
        data = {
            "registered": rows,
            "default_checkpoint": str(DEFAULT_CHECKPOINT),
            "default_present": DEFAULT_CHECKPOINT.exists(),
            "cache_dir": str(cache),
            "cached": files,
        }
        if args.json:
            print(json.dumps(data))
        else:
            for r in rows:
                print(f"{r['name']:22s} {r['input_size']:4d}px  {r['description']}")
            present = "present" if data["default_present"] else "MISSING"
            print(f"default checkpoint: {DEFAULT_CHECKPOINT} ({present})")
            for name, ok in files.items():
                print(f"cache {cache / name}: {'present' if ok else 'not pulled'}")
        return 0
    if args.models_command == "info":
        info = _describe(args.name)
        print(json.dumps(info, indent=None if args.json else 2))
        return 0
    paths = pull(cache=args.cache_dir, base_url=hub_url(args.hub_url))
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0
