"""YuNet face detection in PyTorch with packaged weights: no model file, no download, batches.

The same network, weights, thresholds and NMS as ``cv2.FaceDetectorYN`` on the ONNX file it was
converted from (``scripts/convert_yunet_onnx.py``; MIT notice in ``weights/LICENSE-yunet.txt``),
so on a CPU it finds the same faces. Unlike OpenCV's detector it takes many frames per forward
pass and runs on any torch device, which is what a GPU worker needs. Frames are zero-padded on
the right and bottom to multiples of 32, as OpenCV pads; frames of different sizes are grouped by
padded size, since a larger canvas would change the network's output near the border.
"""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from emostream.errors import ConfigError
from emostream.onnx_cpu import cpu_network
from emostream.vision.detection import Detection, yunet_rows_to_detections
from emostream.vision.yunet_decode import batched_nms, decode
from emostream.vision.yunet_net import INPUT_DIVISOR, YuNet

WEIGHTS = Path(__file__).resolve().parent / "weights" / "yunet.pt"


@functools.lru_cache(maxsize=4)
def load_yunet(device: str = "cpu") -> YuNet:
    """The packaged network on ``device``, loaded once per process and shared (inference only).

    On a CPU the weights are kept channels-last: oneDNN's depthwise convolutions, most of
    YuNet, run about twice as fast that way (480 x 288 frame on the 2-vCPU dev machine, one
    thread: 24.1 -> 12.7 ms; eight 64 px windows: 7.7 -> 5.1 ms).
    """
    if not WEIGHTS.is_file():
        raise ConfigError(
            f"packaged YuNet weights missing at {WEIGHTS}; reinstall emostream "
            "(the wheel ships them) or use detector kind 'haar'"
        )
    state = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    model = YuNet()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ConfigError(
            f"{WEIGHTS} does not fit the YuNet network ({exc}); regenerate it with "
            "scripts/convert_yunet_onnx.py"
        ) from None
    model = model.to(device).eval()
    if model_on_cpu(device):
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return model.merge_heads()


def model_on_cpu(device: str) -> bool:
    return torch.device(device).type == "cpu"


def padded(size: int) -> int:
    """The padded length OpenCV uses: the next multiple of 32 (a multiple stays as it is)."""
    return ((size - 1) // INPUT_DIVISOR + 1) * INPUT_DIVISOR


class TorchYuNetDetector:
    """``FaceDetector`` with a batch API; ``score_threshold``/``nms_threshold`` as OpenCV's."""

    name = "yunet_torch"

    def __init__(
        self,
        score_threshold: float = 0.7,
        nms_threshold: float = 0.3,
        top_k: int = 5000,
        min_face_px: int = 32,
        max_faces: int = 16,
        device: str = "cpu",
        runtime: str = "torch",
    ) -> None:
        self.device = torch.device(device)
        self.net = load_yunet(str(self.device))
        self._forward = self._network(runtime)
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.top_k = top_k
        self.min_face_px = min_face_px
        self.max_faces = max_faces

    @property
    def runtime(self) -> str:
        """What runs the network: ``onnxruntime`` or ``torch``."""
        return "torch" if self._forward is self.net else "onnxruntime"

    def _network(self, runtime: str):
        """The network, or its ONNX Runtime twin on the CPU (``emostream.onnx_cpu``)."""
        example = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(0)) * 255
        return cpu_network(self.net, example, (0, 2, 3), runtime, torch.get_num_threads(), "yunet")

    @torch.inference_mode()
    def detect_tensor(self, batch_bgr: torch.Tensor) -> list[torch.Tensor]:
        """N x 3 x H x W BGR (uint8 or float 0..255, on ``device``) -> per frame K x 15 rows.

        Rows as ``FaceDetectorYN.detect`` returns them: x, y, w, h, five landmark x/y pairs, score;
        best first; still on the device.
        """
        if batch_bgr.ndim != 4 or batch_bgr.shape[1] != 3:
            raise ValueError(f"expected N x 3 x H x W BGR frames, got {tuple(batch_bgr.shape)}")
        h, w = batch_bgr.shape[-2:]
        x = batch_bgr.float()
        ph, pw = padded(h), padded(w)
        if (ph, pw) != (h, w):
            x = F.pad(x, (0, pw - w, 0, ph - h))
        if self.device.type == "cpu" and self.runtime == "torch":
            x = x.contiguous(memory_format=torch.channels_last)
        cls, obj, bbox, kps = self._forward(x)
        faces, scores = decode(cls, obj, bbox, kps, ph, pw)
        return batched_nms(faces, scores, self.score_threshold, self.nms_threshold, self.top_k)

    def detect_raw(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """BGR (or grey) uint8 frames of any sizes -> per frame K x 15 float32 rows (see above)."""
        groups: dict[tuple[int, int], list[int]] = {}
        for i, image in enumerate(images):
            groups.setdefault((padded(image.shape[0]), padded(image.shape[1])), []).append(i)
        out: list[np.ndarray] = [np.zeros((0, 15), np.float32)] * len(images)
        for (ph, pw), members in groups.items():
            canvas = np.zeros((len(members), ph, pw, 3), np.uint8)
            for slot, i in enumerate(members):
                image = images[i]
                if image.ndim == 2:
                    image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
                canvas[slot, : image.shape[0], : image.shape[1]] = image
            batch = torch.from_numpy(canvas).to(self.device).permute(0, 3, 1, 2)
            for i, rows in zip(members, self.detect_tensor(batch)):
                out[i] = rows.float().cpu().numpy()
        return out

    def detections_from_rows(self, rows: np.ndarray, width: int, height: int) -> list[Detection]:
        """Rows -> clamped integer boxes, as ``YuNetDetector`` turns OpenCV's rows into them."""
        return yunet_rows_to_detections(rows, width, height, self.min_face_px, self.max_faces)

    def detect_batch(self, images: list[np.ndarray]) -> list[list[Detection]]:
        """Faces in many frames with one forward pass per padded frame size."""
        return [
            self.detections_from_rows(rows, image.shape[1], image.shape[0])
            for image, rows in zip(images, self.detect_raw(images))
        ]

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        return self.detect_batch([image_bgr])[0]
