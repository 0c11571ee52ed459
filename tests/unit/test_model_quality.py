"""Training and calibration tools behind the packaged model: EMA, mixing, resume, temperature
scaling, ensembles, near-duplicates, and the blur check."""

import json

import cv2
import numpy as np
import pytest
import torch

from emostream.cli.main import main
from emostream.models import (
    CheckpointError,
    EmotionClassifier,
    EnsembleClassifier,
    get_spec,
    load_checkpoint,
    load_models,
    save_checkpoint,
    set_temperature,
)
from emostream.training import TrainConfig, train
from emostream.training.augment import mix_batch
from emostream.training.calibration import (
    expected_calibration_error,
    fit_temperature,
    nll,
    probs_from_views,
    softmax,
)
from emostream.training.ema import WeightEMA
from emostream.training.fer2013 import blur_warning, write_csv
from emostream.training.near_duplicates import near_duplicate_mask
from tests.faces import blocky_faces, synthetic


def _model(seed: int, temperature: float = 1.0) -> EmotionClassifier:
    torch.manual_seed(seed)
    spec = get_spec("rmn_compact")
    return EmotionClassifier(
        spec.build().eval(),
        spec.preprocessing,
        "rmn_compact",
        version=f"s{seed}",
        trained=True,
        temperature=temperature,
    ).eval()


def test_temperature_fit_recovers_a_known_temperature():
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 2.0, (4000, 7))
    labels = np.array([rng.choice(7, p=p) for p in softmax(true_logits)])
    overconfident = true_logits * 2.5  # a model 2.5x too sure of itself
    t = fit_temperature(overconfident, labels)
    assert 2.2 < t < 2.8
    before = probs_from_views(overconfident[:, None, :])
    after = probs_from_views(overconfident[:, None, :], t)
    assert expected_calibration_error(after, labels) < expected_calibration_error(before, labels)
    assert expected_calibration_error(after, labels) < 0.03
    assert nll(after, labels) < nll(before, labels)


def test_ece_is_zero_when_confidence_equals_accuracy_and_large_when_not():
    labels = np.zeros(100, dtype=int)
    probs = np.full((100, 7), 0.0)
    probs[:, 0] = 1.0
    assert expected_calibration_error(probs, labels) == pytest.approx(0.0)
    wrong = np.roll(probs, 1, axis=1)  # sure and always wrong
    assert expected_calibration_error(wrong, labels) == pytest.approx(1.0)


def test_temperature_is_stored_and_divides_the_logits(tmp_path):
    model = _model(0)
    path = save_checkpoint(tmp_path / "m.pt", model.net, "rmn_compact", model.preprocessing)
    x = torch.rand(4, 3, 48, 48)
    with torch.inference_mode():
        plain = load_checkpoint(path)(x)
        set_temperature(path, 2.0)
        scaled = load_checkpoint(path)(x)
    assert load_checkpoint(path).temperature == 2.0
    assert torch.allclose(scaled * 2.0, plain, atol=1e-5)
    with pytest.raises(CheckpointError, match="positive"):
        set_temperature(path, -1.0)


def test_ensemble_softmax_is_the_mean_of_member_softmaxes(tmp_path):
    a, b = _model(1), _model(2, temperature=1.5)
    ens = EnsembleClassifier([a, b]).eval()
    x = torch.rand(5, 3, 48, 48)
    with torch.inference_mode():
        expected = (torch.softmax(a(x), 1) + torch.softmax(b(x), 1)) / 2
        got = torch.softmax(ens(x), 1)
    assert torch.allclose(got, expected, atol=1e-5)
    assert ens.version == "s1+s2" and ens.trained
    for m, name in ((a, "a.pt"), (b, "b.pt")):
        save_checkpoint(
            tmp_path / name,
            m.net,
            "rmn_compact",
            m.preprocessing,
            {"version": m.version},
            temperature=m.temperature,
        )
    loaded = load_models(f"{tmp_path / 'a.pt'},{tmp_path / 'b.pt'}")
    assert isinstance(loaded, EnsembleClassifier)
    with torch.inference_mode():
        assert torch.allclose(torch.softmax(loaded(x), 1), expected, atol=1e-4)
    assert isinstance(load_models(str(tmp_path / "a.pt")), EmotionClassifier)
    with pytest.raises(CheckpointError, match="at least two"):
        EnsembleClassifier([a])


def test_ema_follows_the_weights_slowly():
    net = torch.nn.Linear(3, 2)
    ema = WeightEMA(net, decay=0.9)
    with torch.no_grad():
        net.weight.add_(1.0)
    before = ema.module.weight.clone()
    for _ in range(200):
        ema.update(net)
    assert not torch.allclose(before, ema.module.weight)
    assert torch.allclose(ema.module.weight, net.weight, atol=1e-3)
    with pytest.raises(ValueError):
        WeightEMA(net, decay=1.0)


def test_cutmix_pastes_a_box_and_weights_labels_by_area():
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    x = torch.stack([torch.full((3, 48, 48), float(i)) for i in range(8)])
    y = torch.arange(8)
    mixed, ya, yb, lam = mix_batch(x, y, "cutmix", 1.0, gen)
    kept = (mixed == x).all(dim=1).float().mean(dim=(1, 2))  # share of each image left alone
    assert torch.allclose(kept[yb != ya], torch.full_like(kept[yb != ya], lam), atol=1e-6)
    assert torch.equal(ya, y)
    same = mix_batch(x, y, "off", 1.0, gen)
    assert same[3] == 1.0 and torch.equal(same[0], x)
    with pytest.raises(ValueError, match="mix"):
        mix_batch(x, y, "blend", 1.0, gen)


def test_resume_continues_exactly(tmp_path):
    data = synthetic(12)
    csv = tmp_path / "fer.csv"
    write_csv(csv, data)
    common = dict(data=str(csv), epochs=2, batch_size=16, threads=1, mix="cutmix", ema_decay=0.9)
    train(TrainConfig(out_dir=str(tmp_path / "straight"), **common))
    train(TrainConfig(out_dir=str(tmp_path / "split"), **{**common, "epochs": 1}))
    train(TrainConfig(out_dir=str(tmp_path / "split"), **common))  # resumes at epoch 2
    a = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "split" / "last.pt", weights_only=True)
    for key in a["net"]:
        assert torch.equal(a["net"][key], b["net"][key]), key
    for key in a["ema"]["module"]:
        assert torch.equal(a["ema"]["module"][key], b["ema"]["module"][key]), key
    rows = [
        json.loads(line) for line in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [r["epoch"] for r in rows] == [1, 2] and rows[0]["eta_s"] >= 0
    assert "val_acc_plain" in rows[0]
    best = load_checkpoint(tmp_path / "split" / "best.pt")
    assert best.preprocessing.blur_sigma == 0.0  # trained on sharp faces: no blur in forward


def test_init_warm_starts_from_a_checkpoint_and_refuses_another_architecture(tmp_path):
    data = synthetic(4)
    csv = tmp_path / "fer.csv"
    write_csv(csv, data)
    start = _model(seed=7)
    init = save_checkpoint(
        tmp_path / "start.pt", start.net, "rmn_compact", start.preprocessing, meta={"trained": True}
    )
    # lr ~0 and no weight average: after one step the weights are still the checkpoint's.
    common = dict(data=str(csv), epochs=1, batch_size=16, threads=1, max_batches=1, ema_decay=0)
    train(TrainConfig(out_dir=str(tmp_path / "warm"), init=str(init), lr=1e-12, **common))
    train(TrainConfig(out_dir=str(tmp_path / "cold"), lr=1e-12, **common))
    warm = torch.load(tmp_path / "warm" / "last.pt", weights_only=True)["net"]
    cold = torch.load(tmp_path / "cold" / "last.pt", weights_only=True)["net"]
    conv = next(k for k in warm if k.endswith("conv1.weight"))
    assert torch.allclose(warm[conv], start.net.state_dict()[conv], atol=1e-6)
    assert not torch.allclose(cold[conv], start.net.state_dict()[conv], atol=1e-3)
    with pytest.raises(ValueError, match="not a 'rmn_small' checkpoint"):
        other = dict(common, arch="rmn_small", init=str(init))
        train(TrainConfig(out_dir=str(tmp_path / "other"), **other))


def test_calibrate_and_eval_report_ece_and_nll(tmp_path, capsys):
    data = synthetic(12)
    csv = tmp_path / "fer.csv"
    write_csv(csv, data)
    train(
        TrainConfig(data=str(csv), out_dir=str(tmp_path / "r"), epochs=1, batch_size=16, threads=1)
    )
    ckpt = tmp_path / "r" / "best.pt"
    assert (
        main(
            [
                "calibrate",
                "--data",
                str(csv),
                "--checkpoint",
                str(ckpt),
                "--out",
                str(tmp_path / "c.pt"),
            ]
        )
        == 0
    )
    cal = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert cal["temperature"] > 0 and cal["after"]["nll"] <= cal["before"]["nll"] + 1e-6
    assert (
        main(
            [
                "eval",
                "--data",
                str(csv),
                "--checkpoint",
                str(tmp_path / "c.pt"),
                "--flip",
                "--near-duplicates",
                "--json",
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("accuracy", "n", "ece", "nll", "uncalibrated", "n_without_near_duplicates"):
        assert key in report, key
    assert report["temperatures"] == [pytest.approx(cal["temperature"], rel=1e-3)]


def test_near_duplicates_find_shifted_and_mirrored_copies_only():
    rng = np.random.default_rng(0)
    faces = np.stack(
        [
            cv2.GaussianBlur(rng.integers(0, 255, (48, 48), dtype=np.uint8), (0, 0), 2)
            for _ in range(50)
        ]
    )
    shifted = np.roll(faces[:5], 1, axis=2)
    mirrored = faces[5:10, :, ::-1]
    brighter = np.clip(faces[10:15].astype(int) + 20, 0, 255).astype(np.uint8)
    unrelated = np.stack(
        [
            cv2.GaussianBlur(rng.integers(0, 255, (48, 48), dtype=np.uint8), (0, 0), 2)
            for _ in range(5)
        ]
    )
    test = np.concatenate([shifted, mirrored, brighter, unrelated])
    mask = near_duplicate_mask(test, faces)
    assert mask[:15].all() and not mask[15:].any()


def test_blur_warning_names_the_measured_figures():
    sharp = blocky_faces(40)
    blurred = np.stack([cv2.GaussianBlur(im, (0, 0), 3.0) for im in sharp])
    msg = blur_warning(blurred, sharp)
    assert msg and "Laplacian variance" in msg and "sigma" in msg
    assert blur_warning(sharp, sharp) is None
