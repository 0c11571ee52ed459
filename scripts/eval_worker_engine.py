"""FER2013 accuracy of the classifier exactly as the worker builds it from its settings.

`emostream eval` loads checkpoints itself; this goes through the worker's own path instead
(``WorkerSettings`` from the environment -> ``engine_from_settings``), so an ensemble chosen with
``EMOSTREAM_MODEL__CHECKPOINT=a.pt,b.pt,c.pt`` is measured with the dtype, runtime and flip TTA
the worker would use on this machine. Prints one JSON object.

    EMOSTREAM_MODEL__CHECKPOINT=a.pt,b.pt .venv/bin/python scripts/eval_worker_engine.py \
        --data ../shared/data/fer2013/fer2013_train_publictest.csv.gz
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from emostream.config import WorkerSettings
from emostream.inference import engine_from_settings
from emostream.labels import EMOTIONS
from emostream.training.evaluate import classification_report
from emostream.training.fer2013 import load_fer2013


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="FER2013 CSV(.gz) or image-folder root")
    parser.add_argument("--usage", default="PublicTest")
    args = parser.parse_args()
    settings = WorkerSettings()
    engine = engine_from_settings(settings.model)
    data = load_fer2013(args.data, args.usage)
    # the engine's outputs follow its preprocessing labels; FER2013 rows follow EMOTIONS
    order = [list(engine.preprocessing.labels).index(name) for name in EMOTIONS]
    probs = np.concatenate(
        [
            engine.classify(list(data.images[i : i + 256]))[:, order]
            for i in range(0, len(data.labels), 256)
        ]
    )
    report = classification_report(data.labels, probs.argmax(1))
    print(
        json.dumps(
            {
                "checkpoint": settings.model.checkpoint,
                "model": engine.model_name,
                "version": engine.model_version,
                "dtype": str(engine.dtype).removeprefix("torch."),
                "runtime": engine.runtime,
                "flip_tta": settings.model.flip_tta,
                "usage": args.usage,
                "n": report["n"],
                "accuracy": report["accuracy"],
                "neutral_recall": report["per_class"]["neutral"]["recall"],
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
