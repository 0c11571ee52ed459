"""Face detection batched on a torch device: one PyTorch YuNet pass per frame size."""

from __future__ import annotations

import numpy as np
import torch

from emostream.vision import Detection
from emostream.vision.device_ops import area_resize
from emostream.vision.yunet_torch import TorchYuNetDetector


class DeviceDetector:
    """Frames shrunk to ``max_width_px`` (area interpolation), detected in one forward pass per
    frame size; only the boxes come back to the host, in frame pixels, as
    ``DownscaledDetector(TorchYuNet)`` reports them."""

    def __init__(
        self,
        device: torch.device,
        max_width_px: int | None,
        min_face_px: int,
        max_faces: int,
        score_threshold: float,
    ) -> None:
        inner_min_px = min(16, min_face_px) if max_width_px else min_face_px
        self.yunet = TorchYuNetDetector(
            score_threshold=score_threshold,
            min_face_px=inner_min_px,
            max_faces=max_faces,
            device=str(device),
        )
        self.max_width_px = max_width_px
        self.min_face_px = min_face_px

    def detect_all(self, images: list[torch.Tensor]) -> list[list[Detection]]:
        """Faces per frame in frame pixels."""
        groups: dict[tuple[int, int], list[int]] = {}
        for i, image in enumerate(images):
            groups.setdefault(tuple(image.shape[-2:]), []).append(i)
        found: list[list[Detection]] = [[] for _ in images]
        for (h, w), members in groups.items():
            scale = max(w / self.max_width_px, 1.0) if self.max_width_px else 1.0
            sw, sh = (self.max_width_px, int(round(h / scale))) if scale > 1.0 else (w, h)
            batch = torch.stack([images[i] for i in members])
            small = area_resize(batch, sh, sw) if scale > 1.0 else batch.float()
            rows = self.yunet.detect_tensor(small)
            counts = [len(r) for r in rows]
            host = torch.cat(rows).float().cpu().numpy() if sum(counts) else np.zeros((0, 15))
            offsets = np.cumsum([0, *counts])
            for slot, i in enumerate(members):
                mine = host[offsets[slot] : offsets[slot + 1]]
                dets = self.yunet.detections_from_rows(mine, sw, sh)
                if scale > 1.0:
                    dets = self._to_frame(dets, scale, w, h)
                found[i] = dets
        return found

    def _to_frame(self, dets: list[Detection], scale: float, w: int, h: int) -> list[Detection]:
        out = []
        for d in dets:
            x, y = int(d.x * scale), int(d.y * scale)
            bw, bh = min(int(d.w * scale), w - x), min(int(d.h * scale), h - y)
            if min(bw, bh) >= self.min_face_px:
                out.append(Detection(x, y, bw, bh, d.score))
        return out
