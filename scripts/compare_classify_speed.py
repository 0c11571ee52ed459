"""Faces/s of two models measured interleaved in one process, so machine noise hits both alike.

`emostream bench classify` measures one model per run; on a shared 2-vCPU VM two such runs a
minute apart differ by 10-20%, more than the difference issue 38 bounds (10%). This alternates
short timed rounds of each model and reports the median of each and their ratio:

    .venv/bin/python scripts/compare_classify_speed.py --a default \
        --b models/teachers/rmn_compact_sharp_s0_e41.pt --batch 64 --dtypes fp32,bf16 --rounds 15

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics

import torch

from emostream.bench.classify import _faces, _model, _timed
from emostream.inference import EmotionEngine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", default="default", help="'default', a checkpoint or an arch name")
    parser.add_argument("--b", required=True, help="the model to compare with")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--dtypes", default="fp32,bf16")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--seconds", type=float, default=1.0, help="per model per round")
    args = parser.parse_args()
    faces = _faces(args.batch)
    out: dict = {
        "benchmark": "compare_classify_speed",
        "a": args.a,
        "b": args.b,
        "batch": args.batch,
        "rounds": args.rounds,
        "seconds_per_round": args.seconds,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "dtypes": {},
    }
    for dtype in args.dtypes.split(","):
        engines = {
            name: EmotionEngine(_model(path), dtype=dtype, max_batch=args.batch)
            for name, path in (("a", args.a), ("b", args.b))
        }
        rates: dict[str, list[float]] = {"a": [], "b": []}
        for _ in range(args.rounds):
            for name, engine in engines.items():
                rate = _timed(lambda e=engine: e.classify(faces), args.batch, args.seconds)
                rates[name].append(round(rate, 1))
        med = {name: statistics.median(r) for name, r in rates.items()}
        out["dtypes"][dtype] = {
            "a_faces_per_s_median": med["a"],
            "b_faces_per_s_median": med["b"],
            "a_over_b": round(med["a"] / med["b"], 3),
            "a_rounds": rates["a"],
            "b_rounds": rates["b"],
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
