"""Average the weights of checkpoints of one architecture (a uniform "model soup") into one file.

How the packaged default was made from two distilled students (MODEL_CARD.md, "Recipe"):

    .venv/bin/python scripts/soup_checkpoints.py --data $FER --out runs/soup/s14_s16.pt \\
        --version rmn_compact_deep3-sharp-sgd-kd-soup-s14-s16 \\
        models/teachers/rmn_compact_deep3_sharp_shrunk_kd_s14_e29.pt \\
        models/teachers/rmn_compact_deep3_sharp_shrunk_kd_s16_e1.pt

A soup of a fine-tuned student and the deep teacher it was cut from (its start, reshaped to the
student's blocks) is a weight-space ensemble of a fine-tune and its start (WiSE-FT):

    .venv/bin/python scripts/soup_checkpoints.py --data $FER --out runs/soup/s14_s9start.pt \\
        models/teachers/rmn_compact_deep3_sharp_shrunk_kd_s14_e29.pt \\
        models/teachers/rmn_medium_sharp_deepened_s9_e20.pt

Batch-norm statistics are recomputed on the FER2013 Training faces (no augmentation, no labels).
Prints one JSON object: PublicTest accuracy (flip TTA) and neutral recall of each ingredient and
of the soup. Calibrate the soup afterwards with ``emostream calibrate``.
"""

from __future__ import annotations

import argparse
import json

from emostream.models.checkpoint import load_checkpoint, save_checkpoint
from emostream.training.evaluate import flip_accuracy_and_neutral_recall as flip_scores
from emostream.training.fer2013 import load_fer2013
from emostream.training.soup import make_soup, reshape_like_first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "checkpoints",
        nargs="+",
        help="two or more checkpoints; the soup has the first's architecture, and RMNs that differ "
        "from it only in blocks per stage are reshaped to it (dropped blocks, identity blocks)",
    )
    parser.add_argument("--data", required=True, help="FER2013 CSV (Training and PublicTest)")
    parser.add_argument("--out", required=True, help="where to write the soup (fp16)")
    parser.add_argument("--version", help="model version the soup reports (default: derived)")
    args = parser.parse_args()
    models = [load_checkpoint(p) for p in args.checkpoints]
    data = load_fer2013(args.data)  # read once: PublicTest scores, Training batch-norm statistics
    test, train = data.select("PublicTest"), data.select("Training")
    if not len(test) or not len(train):
        raise SystemExit(f"{args.data} needs both Training and PublicTest faces")
    scores = {p: flip_scores(m, test.images, test.labels) for p, m in zip(args.checkpoints, models)}
    models = reshape_like_first(models)
    versions = [m.version for m in models]
    soup = make_soup(models, train.images)
    meta = {
        "version": args.version or "soup(" + "+".join(versions) + ")",
        "trained": True,
        "soup_of": versions,
    }
    save_checkpoint(args.out, soup.net, soup.name, soup.preprocessing, meta, half=True)
    out = {
        "ingredients": scores,
        "soup": flip_scores(soup, test.images, test.labels),
        "out": args.out,
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
