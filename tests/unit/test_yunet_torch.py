"""The PyTorch YuNet finds the same faces as cv2.FaceDetectorYN, in batches, with no model file."""

import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from emostream.vision.yunet_decode import batched_nms
from emostream.vision.yunet_net import YuNet
from emostream.vision.yunet_torch import WEIGHTS, TorchYuNetDetector
from emostream.vision_options import DetectorOptions
from tests.conftest import REFERENCE_DATA

YUNET_ONNX = REFERENCE_DATA / "models" / "face_detection_yunet_2026may.onnx"
FRAMES = REFERENCE_DATA / "data" / "photos" / "frames"
needs_shared = pytest.mark.skipif(
    not (YUNET_ONNX.exists() and FRAMES.is_dir()),
    reason="YuNet ONNX and photos: reference data (EMOSTREAM_REFERENCE_DATA) not present",
)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def _opencv_rows(image: np.ndarray) -> np.ndarray:
    net = cv2.FaceDetectorYN.create(
        str(YUNET_ONNX), "", (image.shape[1], image.shape[0]), 0.7, 0.3, 5000
    )
    _, faces = net.detect(image)
    return np.zeros((0, 15), np.float32) if faces is None else faces


def _photos(step: int = 8) -> list[np.ndarray]:
    paths = sorted(FRAMES.rglob("*.jpg"))[::step]  # every folder, both sources, both sizes
    return [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in paths]


def _montage(images: list[np.ndarray]) -> np.ndarray:
    """Several people in one 640x480 frame (side by side, scaled down): NMS across faces."""
    canvas = np.full((480, 640, 3), 90, np.uint8)
    for i, image in enumerate(images[:3]):
        tile = cv2.resize(image, (210, int(210 * image.shape[0] / image.shape[1])))
        h = min(tile.shape[0], 480)
        canvas[:h, i * 213 : i * 213 + 210] = tile[:h]
    return canvas


@needs_shared
def test_matches_opencv_on_the_shared_photos():
    photos = _photos()
    frames = photos + [_montage(photos[i : i + 3]) for i in range(0, 9, 3)]
    ours = TorchYuNetDetector().detect_raw(frames)
    faces = 0
    for image, got in zip(frames, ours):
        want = _opencv_rows(image)
        assert len(got) == len(want), "a face found by one detector only"
        for g in got:  # pair each face with OpenCV's best-overlapping one
            w = max(want, key=lambda row: _iou(g[:4], row[:4]))
            assert _iou(g[:4], w[:4]) >= 0.9
            assert abs(g[14] - w[14]) <= 0.02
            assert np.abs(g[4:14] - w[4:14]).max() <= 0.02 * max(w[2], w[3])  # landmarks
            faces += 1
    assert faces >= len(frames)  # every photo has a face; montages several


def test_batched_equals_one_at_a_time(astronaut_bgr):
    det = TorchYuNetDetector()
    frames = [
        astronaut_bgr,
        cv2.flip(astronaut_bgr, 1),
        cv2.resize(astronaut_bgr, (300, 260)),
        cv2.cvtColor(astronaut_bgr, cv2.COLOR_BGR2GRAY),
        np.zeros((200, 240, 3), np.uint8),
    ]
    batched = det.detect_raw(frames)
    for frame, rows in zip(frames, batched):
        alone = det.detect_raw([frame])[0]
        assert rows.shape == alone.shape
        np.testing.assert_allclose(rows, alone, atol=1e-3)
    assert [len(r) for r in batched[:3]] == [1, 1, 1] and len(batched[4]) == 0
    assert det.detect_batch(frames) == [det.detect(f) for f in frames]


def test_nms_keeps_what_opencv_keeps():
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 60, size=(40, 2))
    wh = rng.uniform(20, 50, size=(40, 2))
    boxes = np.concatenate([xy, wh], 1).astype(np.float32)
    scores = rng.uniform(0.6, 1.0, size=40).astype(np.float32)
    faces = torch.from_numpy(np.concatenate([boxes, np.zeros((40, 10), np.float32)], 1))[None]
    (kept,) = batched_nms(faces, torch.from_numpy(scores)[None], 0.7, 0.3)
    rects = [tuple(int(v) for v in b) for b in boxes]
    want = cv2.dnn.NMSBoxes(rects, scores.tolist(), 0.7, 0.3, top_k=5000)
    np.testing.assert_array_equal(kept[:, 14].numpy(), scores[np.asarray(want).reshape(-1)])


def test_works_from_settings_with_no_model_file(astronaut_bgr):
    from emostream.worker.main import detector_from_settings

    det = detector_from_settings(DetectorOptions(kind="yunet_torch", yunet_model=None))
    (face,) = det.detect(astronaut_bgr)
    assert 150 < face.x < 220 and 40 < face.y < 110 and face.w > 60 and face.score > 0.7


def test_cpu_path_does_not_import_torchvision():
    code = (
        "import sys, numpy as np\n"
        "from emostream.vision import build_detector\n"
        "build_detector('yunet_torch').detect(np.zeros((64, 64, 3), np.uint8))\n"
        "assert 'torchvision' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_finds_what_the_cpu_finds(astronaut_bgr):
    frames = [astronaut_bgr, cv2.flip(astronaut_bgr, 1), cv2.resize(astronaut_bgr, (640, 480))]
    on_cpu = TorchYuNetDetector().detect_raw(frames)
    on_gpu = TorchYuNetDetector(device="cuda").detect_raw(frames)
    for a, b in zip(on_cpu, on_gpu):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=0.05)


def test_merged_heads_give_the_separate_heads_outputs():
    net = YuNet()
    net.load_state_dict(torch.load(WEIGHTS, map_location="cpu", weights_only=True))
    net.eval()
    x = torch.rand(3, 3, 96, 160) * 255
    with torch.inference_mode():
        separate = net(x)
        merged = net.merge_heads()(x)
    for a, b in zip(separate, merged):
        assert a.shape == b.shape and torch.allclose(a, b, atol=1e-5, rtol=1e-5)
    assert set(net.state_dict()) == set(YuNet().state_dict())  # the file's layout, unchanged
