"""`emostream eval-photos`: a first cross-dataset look, through the worker's own path.

Labelled photos from other data sets (a folder with ``labels.csv``: ``path,label_fer7,...``, paths
relative to the folder, as ../shared/data/photos has them) go through what the worker does with a
frame: detect faces, take the official RMN crop, classify with the configured model and flip TTA.
The largest detected face is the photo's answer; a photo where no face is found counts as wrong
(and is counted separately), so the figure is the end-to-end accuracy a user would see.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

from emostream.errors import ConfigError


def _read_labels(root: Path) -> list[tuple[str, str, str]]:
    """(set, path, label) rows; the set is the first folder of the path (frames, crops)."""
    labels = root / "labels.csv"
    if not labels.is_file():
        raise ConfigError(
            f"{labels} not found: --photos must be a folder with labels.csv "
            "(columns path,label_fer7)"
        )
    with labels.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"path", "label_fer7"} <= set(reader.fieldnames):
            raise ConfigError(
                f"{labels}: expected columns path,label_fer7, got {reader.fieldnames}"
            )
        return [(row["path"].split("/")[0], row["path"], row["label_fer7"]) for row in reader]


def evaluate_photos(
    root: str | Path, detector: str = "haar", checkpoint: str | None = None, batch: int = 512
) -> dict:
    from emostream.cli.predict import predict_images

    root = Path(root)
    rows = _read_labels(root)
    by_set: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for name, path, label in rows:
        by_set[name].append((path, label))
    report: dict = {"photos": str(root), "detector": detector, "sets": {}}
    for name, items in sorted(by_set.items()):
        correct = found = 0
        per_class: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for start in range(0, len(items), batch):
            chunk = items[start : start + batch]
            results, extra = predict_images(
                [str(root / p) for p, _ in chunk], detector, checkpoint=checkpoint
            )
            report["model"] = extra["meta"]
            for (_, label), result in zip(chunk, results):
                faces = result["faces"]
                per_class[label][1] += 1
                if not faces:
                    continue
                found += 1
                face = max(faces, key=lambda f: f["box"][2] * f["box"][3])
                if face["emotion"] == label:
                    correct += 1
                    per_class[label][0] += 1
        n = len(items)
        report["sets"][name] = {
            "n": n,
            "faces_found": found,
            "accuracy": round(correct / n, 4) if n else None,
            "accuracy_where_found": round(correct / found, 4) if found else None,
            "recall_per_class": {k: round(c / t, 4) for k, (c, t) in sorted(per_class.items())},
        }
    return report


def run_eval_photos(args) -> int:
    report = evaluate_photos(args.photos, args.detector, args.checkpoint)
    if args.json:
        print(json.dumps(report))
        return 0
    print(
        f"model {report['model']['model']}:{report['model']['version']}, detector {args.detector}"
    )
    for name, s in report["sets"].items():
        print(
            f"{name}: n={s['n']} faces found={s['faces_found']} accuracy={s['accuracy']:.4f} "
            f"(where a face was found {s['accuracy_where_found']})"
        )
        print("  recall: " + ", ".join(f"{k} {v:.2f}" for k, v in s["recall_per_class"].items()))
    return 0
