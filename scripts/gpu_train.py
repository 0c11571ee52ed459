"""Train ensemble members and a larger RMN on a lent GPU, inside a fixed time budget.

One prepared run for a GPU session (see scripts/gpu_train.sh, which sets up the data and the
import path): each job's number of epochs is sized from a short timing probe so that the whole
run fits ``--budget-s``; each member is calibrated (temperature on PublicTest, face + mirror
view) and written as an fp16 checkpoint (well under 16 MiB) with its metrics; the ensemble of
all members is evaluated last. Everything lands in OUT:

    OUT/<job>.pt            fp16 checkpoint, temperature stored
    OUT/gpu_train.json      per job: epochs, img/s, PublicTest plain/flip, ECE/NLL before/after;
                            the ensemble; the device

Tested on CPU with a tiny budget: ``python scripts/gpu_train.py OUT --data tiny.csv --device cpu
--budget-s 60 --max-batches 2``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from emostream.models.checkpoint import load_checkpoint, set_temperature
from emostream.models.registry import get_spec
from emostream.training import TrainConfig, load_fer2013, train
from emostream.training.augment import random_affine, random_erase, to_input
from emostream.training.calibration import calibration_report, fit_temperature, probs_from_views
from emostream.training.evaluate import predict_logits

# name, arch, seed, mix, share of the budget. Diverse members: two seeds and augmentations of the
# shipped architecture, and a deeper variant.
JOBS = [
    ("compact_s1", "rmn_compact", 1, "off", 0.30),
    ("compact_s2_cutmix", "rmn_compact", 2, "cutmix", 0.30),
    ("medium_s3", "rmn_medium", 3, "off", 0.40),
]


def _train_img_per_s(arch: str, device: torch.device, batch: int = 256, steps: int = 20) -> float:
    """Forward + backward + step images/s of one architecture, with the trainer's augmentation."""
    net = get_spec(arch).build().to(device, memory_format=torch.channels_last).train()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    size = get_spec(arch).preprocessing.input_size
    faces = torch.randint(0, 255, (batch, 48, 48), dtype=torch.uint8, device=device)
    y = torch.randint(0, 7, (batch,), device=device)
    gen = torch.Generator().manual_seed(0)
    for i in range(steps + 3):
        if i == 3:  # after warm-up (cuDNN autotuning)
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        x = random_erase(random_affine(to_input(faces, size), gen), p=0.5, generator=gen)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
            loss = torch.nn.functional.cross_entropy(net(x).float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - t0)


def run(args) -> dict:
    device = torch.device(args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work)
    n_train = len(load_fer2013(args.data, "Training"))
    val = load_fer2013(args.data, "PublicTest")
    summary: dict = {
        "device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "budget_s": args.budget_s,
        "jobs": {},
    }
    started = time.perf_counter()
    members = []
    for name, arch, seed, mix, share in JOBS:
        speed = _train_img_per_s(arch, device)
        budget = args.budget_s * share
        # Per epoch: the training pass plus evaluating 3,589 faces twice (about a tenth of it).
        epoch_s = n_train / speed * 1.15 + 1.0
        epochs = max(2, int(budget / epoch_s))
        cfg = TrainConfig(
            data=args.data,
            out_dir=str(work / name),
            arch=arch,
            seed=seed,
            mix=mix,
            epochs=epochs,
            amp="bf16",
            device=args.device,
            max_batches=args.max_batches,
        )
        t0 = time.perf_counter()
        best = train(cfg)
        train_s = time.perf_counter() - t0
        ckpt = out / f"{name}.pt"
        shutil.copyfile(work / name / "best.pt", ckpt)
        model = load_checkpoint(ckpt, device)
        logits = predict_logits(model, val.images, flip=True).astype(np.float64)
        temperature = fit_temperature(logits, val.labels)
        set_temperature(ckpt, temperature)
        before, after = probs_from_views(logits), probs_from_views(logits, temperature)
        summary["jobs"][name] = {
            "arch": arch,
            "seed": seed,
            "mix": mix,
            "epochs": epochs,
            "best_epoch": best["epoch"],
            "probe_train_img_per_s": round(speed),
            "train_s": round(train_s, 1),
            "publictest_plain": best["val_acc_plain"],
            "publictest_flip": best["val_acc"],
            "temperature": round(temperature, 4),
            "before": calibration_report(before, val.labels),
            "after": calibration_report(after, val.labels),
            "file_mib": round(ckpt.stat().st_size / 2**20, 2),
        }
        members.append(after)
        print(json.dumps({name: summary["jobs"][name]}), flush=True)
    ens = np.mean(members, axis=0)
    summary["ensemble"] = {
        "members": [j[0] for j in JOBS],
        "publictest_flip": round(float((ens.argmax(1) == val.labels).mean()), 4),
        **calibration_report(ens, val.labels),
    }
    summary["total_s"] = round(time.perf_counter() - started, 1)
    (out / "gpu_train.json").write_text(json.dumps(summary, indent=2))
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="output folder (checkpoints and gpu_train.json)")
    parser.add_argument("--data", required=True, help="FER2013 CSV with Training and PublicTest")
    parser.add_argument("--work", default="/tmp/emostream_gpu_runs", help="resumable run folders")
    parser.add_argument("--device", default="cuda")
    parser.add_argument(
        "--budget-s",
        type=float,
        default=420.0,
        help="training time for all jobs together (default 7 minutes)",
    )
    parser.add_argument("--max-batches", type=int, help="batches per epoch (CPU smoke test)")
    args = parser.parse_args()
    print(json.dumps(run(args)["ensemble"]))


if __name__ == "__main__":
    main()
