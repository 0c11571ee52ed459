"""YuNet post-processing as ``cv2.FaceDetectorYN`` does it, vectorised over anchors and frames.

Everything here is plain torch on whatever device the network ran on (no torchvision: its CUDA
wheels do not load with the CPU torch build), with one host sync per batch (the largest number
of candidates in a frame, to size the NMS tensors).

What OpenCV does, and so what this does:
- one anchor per cell of each stride's grid over the zero-padded input, row-major, stride 8
  first; score = sqrt(clamp(cls) * clamp(obj));
- box centre = (cell + offset) * stride, size = exp(offset) * stride; landmarks likewise;
- anchors under the score threshold are dropped; if more than one is left, greedy NMS over
  boxes truncated to integers (``cv::Rect2i``), in descending score order (stable), keeping a
  box when its IoU with every kept box is <= the NMS threshold, at most ``top_k`` candidates.
"""

from __future__ import annotations

import torch

from emostream.vision.yunet_net import STRIDES


def anchor_grid(height: int, width: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(A x 2 cell coordinates (col, row), A strides) for a padded input of this size."""
    cells, strides = [], []
    for s in STRIDES:
        rows, cols = height // s, width // s
        r, c = torch.meshgrid(
            torch.arange(rows, device=device), torch.arange(cols, device=device), indexing="ij"
        )
        cells.append(torch.stack([c.reshape(-1), r.reshape(-1)], 1))
        strides.append(torch.full((rows * cols,), s, device=device))
    return torch.cat(cells).float(), torch.cat(strides).float()


def decode(
    cls: torch.Tensor,
    obj: torch.Tensor,
    bbox: torch.Tensor,
    kps: torch.Tensor,
    height: int,
    width: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Network outputs -> (N x A x 14 faces: x, y, w, h, 5 landmark x/y; N x A scores)."""
    cells, strides = anchor_grid(height, width, cls.device)
    s = strides[None, :, None]
    score = torch.sqrt(cls.clamp(0.0, 1.0) * obj.clamp(0.0, 1.0))
    centre = (cells[None] + bbox[..., :2]) * s
    size = torch.exp(bbox[..., 2:]) * s
    landmarks = (kps.reshape(*kps.shape[:2], 5, 2) + cells[None, :, None]) * s[..., None]
    faces = torch.cat([centre - size / 2, size, landmarks.flatten(2)], dim=2)
    return faces, score


def _int_rect_iou(boxes: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU (N x K x K) of x, y, w, h boxes truncated to ints, as ``cv::Rect2i`` does."""
    r = torch.trunc(boxes)
    x1, y1, w, h = r.unbind(-1)
    x2, y2 = x1 + w, y1 + h
    iw = (
        torch.minimum(x2[..., :, None], x2[..., None, :])
        - torch.maximum(x1[..., :, None], x1[..., None, :])
    ).clamp(min=0)
    ih = (
        torch.minimum(y2[..., :, None], y2[..., None, :])
        - torch.maximum(y1[..., :, None], y1[..., None, :])
    ).clamp(min=0)
    inter = iw * ih
    area = w * h
    total = area[..., :, None] + area[..., None, :]
    union = total - inter
    # cv::jaccardDistance: two empty rects count as identical.
    return torch.where(total <= 1e-6, torch.ones_like(inter), inter / union.clamp(min=1e-12))


def batched_nms(
    faces: torch.Tensor,
    scores: torch.Tensor,
    score_threshold: float,
    nms_threshold: float,
    top_k: int = 5000,
) -> list[torch.Tensor]:
    """Per frame, the kept rows (K x 15: the 14 face values and the score), best first."""
    n = scores.shape[0]
    passing = scores >= score_threshold
    counts = passing.sum(1)
    k = min(int(counts.max().item()) if n else 0, top_k)  # the one host sync
    if k == 0:
        return [faces.new_zeros((0, 15)) for _ in range(n)]
    order = torch.sort(torch.where(passing, scores, -1.0), dim=1, descending=True, stable=True)
    idx = order.indices[:, :k]
    top_scores = order.values[:, :k]
    top_faces = torch.gather(faces, 1, idx[..., None].expand(-1, -1, faces.shape[-1]))
    # OpenCV runs NMS only when more than one face passed, and then with a strict ">" threshold.
    several = (counts > 1)[:, None]
    valid = top_scores >= score_threshold
    valid &= ~several | (top_scores > score_threshold)
    overlap = _int_rect_iou(top_faces[..., :4]) > nms_threshold
    keep = valid.clone()
    for i in range(1, k):  # greedy: suppressed by an earlier kept box; vectorised over frames
        suppressed = (overlap[:, :i, i] & keep[:, :i]).any(1)
        keep[:, i] &= ~(suppressed & several[:, 0])
    rows = torch.cat([top_faces, top_scores[..., None]], dim=2)
    # One boolean gather for the whole batch (row-major keeps each frame's order), then split.
    return list(torch.split(rows[keep], keep.sum(1).tolist()))
