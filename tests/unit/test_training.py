import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from emostream.cli.main import main
from emostream.models import EMOTIONS, load_checkpoint
from emostream.training import DatasetError, TrainConfig, load_fer2013, train
from emostream.training.fer2013 import write_csv
from tests.faces import blocky_faces, synthetic


def short_run(tmp_path, name: str, epochs: int, **over) -> tuple[TrainConfig, Path, Path]:
    """A few fast epochs on synthetic faces: the config, the CSV and the run folder."""
    csv = tmp_path / "fer.csv"
    write_csv(csv, synthetic(24))
    out = tmp_path / name
    cfg = TrainConfig(
        data=str(csv),
        out_dir=str(out),
        recipe="fast",
        epochs=epochs,
        batch_size=32,
        lr=3e-3,
        label_smoothing=0.0,
        threads=2,
        **over,
    )
    return cfg, csv, out


def eval_report(capsys, csv: Path, checkpoint: str, *more: str) -> dict:
    """``emostream eval --json`` on the PrivateTest rows: its report."""
    argv = ["--data", str(csv), "--usage", "PrivateTest", "--checkpoint", checkpoint, *more]
    assert main(["eval", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def run_history(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("name", ["fer.csv", "fer.csv.gz"])
def test_csv_loader(tmp_path, name):
    data = synthetic()
    write_csv(tmp_path / name, data)
    loaded = load_fer2013(tmp_path / name)
    assert len(loaded) == len(data)
    assert np.array_equal(loaded.images, data.images)
    assert np.array_equal(loaded.labels, data.labels)
    public = load_fer2013(tmp_path / name, "PublicTest")
    assert set(public.usage) == {"PublicTest"} and len(public) == (data.usage == "PublicTest").sum()


def test_folder_loader(tmp_path):
    data = synthetic(4)
    prefix = {"Training": "Training_", "PublicTest": "PublicTest_", "PrivateTest": "PrivateTest_"}
    for i, (img, label, usage) in enumerate(zip(data.images, data.labels, data.usage)):
        split = "train" if usage == "Training" else "test"
        folder = tmp_path / split / EMOTIONS[label]
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{prefix[usage]}{i}.png"), img)
    loaded = load_fer2013(tmp_path, "all")
    assert len(loaded) == len(data)
    assert sorted(loaded.labels.tolist()) == sorted(data.labels.tolist())
    assert len(load_fer2013(tmp_path, "PrivateTest")) == (data.usage == "PrivateTest").sum()


def test_bad_data_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("emotion,pixels,Usage\n3,1 2 3,Training\n")
    with pytest.raises(DatasetError, match="2304 pixels"):
        load_fer2013(bad)
    (tmp_path / "wrong.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DatasetError, match="columns"):
        load_fer2013(tmp_path / "wrong.csv")
    with pytest.raises(DatasetError, match="not found"):
        load_fer2013(tmp_path / "nope.csv")


def test_short_training_lowers_loss_and_eval_reads_it(tmp_path, capsys):
    cfg, csv, out = short_run(tmp_path, "run", epochs=4)
    best = train(cfg)
    history = run_history(out)
    assert len(history) == 4
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    for png in ("curves.png", "confusion_matrix.png"):
        assert (out / png).stat().st_size > 1000
    model = load_checkpoint(out / "best.pt")
    assert model.trained and model.name == "rmn_compact"
    assert best["val_acc"] >= 0

    # Resuming a finished run trains nothing more.
    train(cfg)
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 4

    best_pt = str(out / "best.pt")
    report = eval_report(capsys, csv, best_pt, "--checkpoint", best_pt, "--tta", "2", "--flip")
    assert report["n"] == (load_fer2013(csv).usage == "PrivateTest").sum()
    assert 0 <= report["accuracy"] <= 1 and len(report["models"]) == 2
    assert set(report["per_class"]) == set(EMOTIONS)
    assert sum(map(sum, report["confusion_matrix"])) == report["n"]

    bf16 = eval_report(capsys, csv, best_pt, "--dtype", "bf16")
    assert bf16["dtype"] == "bf16" and bf16["n"] == report["n"]
    assert 0.5 <= bf16["top1_agreement_vs_fp32"] <= 1 and 0 <= bf16["max_prob_diff_vs_fp32"] < 0.5


def test_blur_estimate_recovers_training_blur():
    from emostream.training.fer2013 import estimate_blur_sigma

    sharp = blocky_faces(60)
    blurred = np.stack([cv2.GaussianBlur(im, (0, 0), 2.5) for im in sharp])
    assert abs(estimate_blur_sigma(blurred, sharp) - 2.5) <= 0.5
    assert estimate_blur_sigma(sharp, sharp) == 0.0


def test_model_blur_matches_opencv_and_is_recorded(tmp_path):
    import torch

    from emostream.models import (
        EmotionClassifier,
        Preprocessing,
        get_spec,
        load_checkpoint,
        save_checkpoint,
    )

    pre = Preprocessing(input_size=48, blur_sigma=3.0)
    net = get_spec("rmn_compact").build().eval()
    model = EmotionClassifier(net, pre, "rmn_compact")
    img = np.random.default_rng(1).integers(0, 255, (48, 48), dtype=np.uint8)
    x = torch.from_numpy(img).float().div(255).view(1, 1, 48, 48).expand(1, 3, 48, 48)
    ref = cv2.GaussianBlur(
        img.astype(np.float32) / 255, (19, 19), 3.0, borderType=cv2.BORDER_REPLICATE
    )
    assert np.abs(model.blur(x)[0, 1].numpy() - ref).max() < 1e-5
    path = save_checkpoint(tmp_path / "b.pt", net, "rmn_compact", pre)
    loaded = load_checkpoint(path)
    assert loaded.preprocessing.blur_sigma == 3.0
    with torch.inference_mode():
        assert torch.allclose(loaded(x), model(x), atol=1e-5)


def test_bf16_autocast_training_runs_and_learns(tmp_path):
    cfg, csv, out = short_run(tmp_path, "amp", epochs=3, amp="bf16")
    train(cfg)
    history = run_history(out)
    assert len(history) == 3 and history[-1]["train_loss"] < history[0]["train_loss"]
    assert load_checkpoint(out / "best.pt").trained
    with pytest.raises(ValueError, match="amp"):
        train(TrainConfig(data=str(csv), out_dir=str(tmp_path / "x"), amp="fp8"))
