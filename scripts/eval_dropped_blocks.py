"""PublicTest accuracy (flip TTA) of a deep RMN with single residual blocks dropped.

Which of a deep teacher's blocks matter, and so which one a fast student should keep
(MODEL_CARD.md, "Recipe of this model"):

    .venv/bin/python scripts/eval_dropped_blocks.py --data $FER \
        --checkpoint models/teachers/rmn_medium_sharp_deepened_s9_e20.pt

Prints one JSON object: accuracy and neutral recall for the full model and for each block layout.
"""

from __future__ import annotations

import argparse
import json

from emostream.models.checkpoint import load_checkpoint
from emostream.models.deepen import reshape_classifier
from emostream.training.evaluate import flip_accuracy_and_neutral_recall as flip_scores
from emostream.training.fer2013 import load_fer2013


def _layouts(blocks: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Each stage with one block fewer, then every stage at one block but one (kept at its own)."""
    one_fewer = [
        tuple(b - (i == j) for j, b in enumerate(blocks))
        for i in range(len(blocks))
        if blocks[i] > 1
    ]
    one_kept = [tuple(b if j == i else 1 for j, b in enumerate(blocks)) for i in range(len(blocks))]
    return list(dict.fromkeys(one_fewer + one_kept))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="FER2013 CSV with a PublicTest split")
    parser.add_argument("--checkpoint", required=True, help="a deep RMN (e.g. rmn_medium)")
    args = parser.parse_args()
    data = load_fer2013(args.data, usage="PublicTest")
    source = load_checkpoint(args.checkpoint)
    config = source.net.config
    out: dict = {"checkpoint": args.checkpoint, "blocks": list(config.blocks)}
    out["full"] = flip_scores(source, data.images, data.labels)
    out["dropped"] = []
    for blocks in _layouts(tuple(config.blocks)):
        model = reshape_classifier(source, blocks)
        out["dropped"].append(
            {"blocks": list(blocks), **flip_scores(model, data.images, data.labels)}
        )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
