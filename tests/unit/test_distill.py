"""Distillation: the soft-target loss, cached teacher targets, a student that learns them."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from emostream.models.checkpoint import save_checkpoint, untrained_model
from emostream.training import TrainConfig
from emostream.training.augment import to_input
from emostream.training.distill import cached_soft_targets, distill_loss, soft_targets
from emostream.training.epoch import EpochSetup, train_epoch
from tests.faces import synthetic


def test_distill_loss_has_the_kl_gradient():
    torch.manual_seed(0)
    logits = torch.randn(5, 7, requires_grad=True)
    targets = torch.softmax(torch.randn(5, 7), dim=1)
    distill_loss(logits, targets, 3.0).backward()
    ours = logits.grad.clone()
    logits.grad = None
    kl = F.kl_div(F.log_softmax(logits / 3.0, dim=1), targets, reduction="batchmean") * 9.0
    kl.backward()
    assert torch.allclose(ours, logits.grad, atol=1e-6)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory) -> str:
    """A (random) teacher checkpoint: what matters here is that it loads as the worker's would."""
    model = untrained_model(seed=3)
    path = tmp_path_factory.mktemp("teacher") / "teacher.pt"
    save_checkpoint(path, model.net, "rmn_compact", model.preprocessing, {"trained": True}, True)
    return str(path)


def test_soft_targets_are_cached_per_teacher_and_temperature(tmp_path, teacher):
    faces = synthetic(2).images
    first = cached_soft_targets([teacher], faces, 4.0, tmp_path)
    assert first.shape == (len(faces), 7)
    assert np.allclose(first.sum(1), 1.0, atol=1e-5)
    cached = list(tmp_path.glob("teacher_targets_*.npy"))
    assert len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns
    again = cached_soft_targets([teacher], faces, 4.0, tmp_path)
    assert np.array_equal(first, again) and cached[0].stat().st_mtime_ns == stamp
    cached_soft_targets([teacher], faces, 0.5, tmp_path)  # another temperature: another file
    assert len(list(tmp_path.glob("teacher_targets_*.npy"))) == 2
    sharper = soft_targets([teacher], faces, 0.5)
    assert sharper.max(1).mean() > first.max(1).mean()  # a higher temperature softens
    with pytest.raises(ValueError, match="at least one teacher"):
        soft_targets([], faces, 4.0)


def _fit(
    targets: torch.Tensor | None, labels: np.ndarray, images: np.ndarray, mix: str
) -> np.ndarray:
    """A tiny student, 30 epochs of the real epoch loop; its accuracy on the oracle classes."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.BatchNorm1d(12), nn.Linear(12, 7))
    opt = torch.optim.SGD(net.parameters(), lr=0.2)
    cfg = TrainConfig(data="-", out_dir="-", epochs=30, mix=mix, kd_alpha=1.0, erase_p=0.0)
    run = EpochSetup(
        net=net,
        opt=opt,
        sched=torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0),
        ema=None,
        images=torch.from_numpy(images),
        labels=torch.from_numpy(labels),
        gen=torch.Generator().manual_seed(0),
        device=torch.device("cpu"),
        input_size=48,
        batch_size=32,
        steps_per_epoch=len(labels) // 32,
        max_rotation_deg=0.0,
        per_step_sched=True,
        teacher_targets=targets,
    )
    for epoch in range(1, cfg.epochs + 1):
        train_epoch(cfg, run, epoch)
    net.eval()
    with torch.no_grad():
        return net(to_input(torch.from_numpy(images), 48)).argmax(1).numpy()


def test_student_learns_the_teacher_not_the_labels():
    """Labels shuffled beyond use: only the teacher's targets carry the classes."""
    data = synthetic(24)
    oracle = data.labels
    shuffled = np.random.default_rng(0).permutation(oracle)
    soft = torch.full((len(oracle), 7), 0.1 / 6)
    soft[torch.arange(len(oracle)), torch.from_numpy(oracle)] = 0.9
    kd = _fit(soft, shuffled, data.images, "mixup")  # mixed targets follow the mixed faces
    plain = _fit(None, shuffled, data.images, "mixup")
    assert (kd == oracle).mean() >= 0.6
    assert (kd == oracle).mean() > (plain == oracle).mean() + 0.3
