"""`emostream train`: flags -> ``TrainConfig`` -> ``emostream.training.train``."""

from __future__ import annotations

import argparse
import json


def _cmd_train(args: argparse.Namespace) -> int:
    from emostream.training import TrainConfig, train

    best = train(
        TrainConfig(
            data=args.data,
            out_dir=args.out,
            arch=args.arch,
            recipe=args.recipe,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            seed=args.seed,
            threads=args.threads,
            max_batches=args.max_batches,
            amp=args.amp,
            ema_decay=args.ema,
            mix=args.mix,
            mix_alpha=args.mix_alpha,
            label_smoothing=args.label_smoothing,
            device=args.device,
            init=args.init,
            teachers=tuple(p for arg in args.teacher for p in arg.split(",") if p),
            kd_alpha=args.kd_alpha,
            kd_temperature=args.kd_temperature,
        )
    )
    print(json.dumps({k: v for k, v in best.items() if k != "report"}))
    return 0


# ``emostream.training.trainer.RECIPES`` with a word on each (importing it would pull in torch).
RECIPES_HELP = {
    "sgd": "Nesterov SGD, warm-up + cosine (default)",
    "fast": "AdamW one-cycle",
    "official": "the RMN paper's",
}
_RECIPE_HELP = "; ".join(f"{name}: {what}" for name, what in RECIPES_HELP.items())


def register(subparsers) -> None:
    """Add the `train` sub-command."""
    s = subparsers.add_parser("train", help="train an emotion model on FER2013")
    s.add_argument("--data", required=True, help="FER2013 CSV(.gz) or image-folder root")
    s.add_argument("--out", required=True, help="run directory (resumes from last.pt)")
    s.add_argument("--arch", default="rmn_compact")
    s.add_argument("--recipe", choices=list(RECIPES_HELP), default="sgd", help=_RECIPE_HELP)
    s.add_argument("--epochs", type=int, default=60)
    s.add_argument("--batch-size", type=int)
    s.add_argument("--lr", type=float)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--threads", type=int)
    s.add_argument("--max-batches", type=int, help="batches per epoch (smoke runs)")
    s.add_argument(
        "--amp",
        choices=["off", "bf16"],
        default="off",
        help="bf16 autocast: ~1.8x faster on CPUs with AMX (rmn_compact), results differ "
        "from fp32 runs",
    )
    s.add_argument(
        "--ema",
        type=float,
        default=0.999,
        help="decay of the weight average that is evaluated and saved (0: off)",
    )
    s.add_argument("--mix", choices=["off", "mixup", "cutmix"], default="off")
    s.add_argument("--mix-alpha", type=float, default=1.0)
    s.add_argument("--label-smoothing", type=float, default=0.1)
    s.add_argument("--device", default="cpu", help="cpu or cuda")
    s.add_argument(
        "--init",
        help="start from this checkpoint's weights (a warm restart: fresh schedule, optimiser "
        "and EMA); an RMN of the same widths with other block counts is reshaped into --arch "
        "(rmn_compact into rmn_medium: added blocks start as the identity; rmn_medium into "
        "rmn_compact_deep3: the blocks it lacks are dropped); ignored when --out holds a "
        "last.pt to resume",
    )
    s.add_argument(
        "--teacher",
        action="append",
        default=[],
        help="teacher checkpoint(s) to distil from (repeat, or comma-separated); their mean "
        "flip-averaged probabilities are cached in --out",
    )
    s.add_argument("--kd-alpha", type=float, default=0.7, help="weight of the teachers' loss")
    s.add_argument("--kd-temperature", type=float, default=4.0, help="softening temperature")
    s.set_defaults(func=_cmd_train, log_level="INFO")
