"""Parsers of the model tools: `eval`, `calibrate`, `models`, `predict`, `eval-photos`.

The handlers live in their own modules, imported only when their command runs: they import
torch, and the CLI should start in a fraction of a second for every other command.
"""

from __future__ import annotations

import argparse

from emostream.vision_options import DetectorOptions

DETECTORS = ["haar", "yunet", "yunet_torch"]
WORKER_DETECTOR = DetectorOptions.model_fields["kind"].default


def _cmd_eval(args: argparse.Namespace) -> int:
    from emostream.cli.evaluate import run_eval

    return run_eval(args)


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from emostream.cli.evaluate import run_calibrate

    return run_calibrate(args)


def _cmd_models(args: argparse.Namespace) -> int:
    from emostream.cli.models import run_models

    return run_models(args)


def _cmd_predict(args: argparse.Namespace) -> int:
    from emostream.cli.predict import run_predict

    return run_predict(args)


def _cmd_eval_photos(args: argparse.Namespace) -> int:
    from emostream.cli.eval_photos import run_eval_photos

    return run_eval_photos(args)


def register(subparsers) -> None:
    """Add `eval`, `calibrate`, `models`, `predict` and `eval-photos`."""
    _register_eval(subparsers)
    _register_calibrate(subparsers)
    _register_models(subparsers)
    _register_predict(subparsers)
    _register_eval_photos(subparsers)


def _register_eval(subparsers) -> None:
    s = subparsers.add_parser(
        "eval", help="evaluate checkpoints (an ensemble if several) on FER2013"
    )
    s.add_argument("--data", required=True)
    s.add_argument(
        "--usage", default="PublicTest", choices=["PublicTest", "PrivateTest", "Training", "all"]
    )
    s.add_argument("--checkpoint", action="append", help="repeat for an ensemble")
    s.add_argument("--tta", type=int, default=0, help="random flip/rotation views per model")
    s.add_argument(
        "--dtype",
        choices=["fp32", "bf16"],
        default="fp32",
        help="bf16 also reports its top-1 agreement with fp32 on the same data",
    )
    s.add_argument("--flip", action="store_true", help="add the deterministic mirrored view")
    s.add_argument(
        "--near-duplicates",
        action="store_true",
        help="also report accuracy without the faces that have a near-duplicate in "
        "Training (needs the Training rows in --data)",
    )
    s.add_argument(
        "--near-dup-threshold",
        type=float,
        default=None,
        help="16x16 thumbnail cosine similarity that counts as a near-duplicate (default 0.92)",
    )
    s.add_argument("--json", action="store_true")
    s.add_argument("--confusion-png", help="write the confusion matrix here")
    s.set_defaults(func=_cmd_eval, log_level="WARNING")


def _register_calibrate(subparsers) -> None:
    s = subparsers.add_parser(
        "calibrate", help="fit a temperature on FER2013 PublicTest and store it in the checkpoint"
    )
    s.add_argument("--data", required=True)
    s.add_argument("--usage", default="PublicTest", choices=["PublicTest", "PrivateTest"])
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--out", help="write here instead of updating --checkpoint in place")
    s.add_argument(
        "--no-flip",
        dest="flip",
        action="store_false",
        help="fit on single views (default: face + mirror, as the worker runs)",
    )
    s.set_defaults(func=_cmd_calibrate, log_level="WARNING")


def _register_models(subparsers) -> None:
    s = subparsers.add_parser("models", help="list, inspect and download models")
    msub = s.add_subparsers(dest="models_command", required=True)
    m = msub.add_parser("list", help="registered architectures and cached checkpoints")
    m.add_argument("--json", action="store_true")
    m = msub.add_parser("info", help="architecture, preprocessing and size of one model")
    m.add_argument("name", help="registered name or checkpoint path")
    m.add_argument("--json", action="store_true")
    m = msub.add_parser("pull", help="download the official RMN checkpoint and YuNet")
    m.add_argument("--cache-dir")
    m.add_argument("--hub-url", help="override the Hugging Face base URL (mirrors)")
    s.set_defaults(func=_cmd_models, log_level="WARNING")


def _register_predict(subparsers) -> None:
    s = subparsers.add_parser("predict", help="faces and emotions in image files")
    s.add_argument("images", nargs="+")
    s.add_argument(
        "--detector", choices=DETECTORS, default=WORKER_DETECTOR, help="default: the worker's"
    )
    s.add_argument("--yunet-model", help="YuNet ONNX path (default: the pulled one)")
    s.add_argument("--checkpoint")
    s.add_argument("--json", action="store_true", help="one JSON list, one entry per image")
    s.add_argument(
        "--annotate",
        help="write boxes and labels: an image file for one image, "
        "else a folder (created if missing; <name>_annotated.jpg per image)",
    )
    s.set_defaults(func=_cmd_predict, log_level="WARNING")


def _register_eval_photos(subparsers) -> None:
    s = subparsers.add_parser(
        "eval-photos", help="cross-dataset accuracy on labelled photos, detect -> crop -> classify"
    )
    s.add_argument("--photos", required=True, help="folder with labels.csv (path,label_fer7)")
    s.add_argument("--detector", choices=DETECTORS, default="haar")
    s.add_argument("--checkpoint", help="default: the packaged model; commas: an ensemble")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_cmd_eval_photos, log_level="WARNING")
