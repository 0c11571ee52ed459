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
import time

import numpy as np

from emostream.config import WorkerSettings
from emostream.inference import engine_from_settings
from emostream.labels import EMOTIONS
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
    started = time.perf_counter()
    probs = np.concatenate(
        [
            engine.classify(list(data.images[i : i + 256]))[:, order]
            for i in range(0, len(data.labels), 256)
        ]
    )
    seconds = time.perf_counter() - started
    pred = probs.argmax(1)
    neutral = EMOTIONS.index("neutral")
    is_neutral = data.labels == neutral
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
                "n": int(len(pred)),
                "accuracy": round(float((pred == data.labels).mean()), 4),
                "neutral_recall": round(float((pred[is_neutral] == neutral).mean()), 4),
                "faces_per_s": round(len(pred) / seconds, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
