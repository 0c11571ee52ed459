"""FER2013 as users have it: the Kaggle CSV (plain or gzip) or the image-folder mirror."""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from emostream.errors import DatasetError
from emostream.images import is_image_path
from emostream.labels import EMOTIONS

USAGES = ("Training", "PublicTest", "PrivateTest")
_FOLDER_PREFIX = {
    "Training_": "Training",
    "PublicTest_": "PublicTest",
    "PrivateTest_": "PrivateTest",
}


@dataclass
class FaceDataset:
    """Grey 48x48 faces with integer labels in FER2013 order."""

    images: np.ndarray  # N x 48 x 48 uint8
    labels: np.ndarray  # N int64
    usage: np.ndarray  # N str

    def __len__(self) -> int:
        return len(self.labels)

    def select(self, usage: str) -> FaceDataset:
        if usage == "all":
            return self
        if usage not in USAGES:
            raise DatasetError(f"usage must be one of {USAGES} or 'all', got {usage!r}")
        keep = self.usage == usage
        return FaceDataset(self.images[keep], self.labels[keep], self.usage[keep])


def load_fer2013(path: str | Path, usage: str = "all") -> FaceDataset:
    """Load FER2013 from a CSV (``.csv`` or ``.csv.gz``) or an image-folder mirror.

    Args:
        path: the CSV file, or a folder with ``train/<class>/*.jpg`` and ``test/<class>/*.jpg``.
        usage: ``Training``, ``PublicTest``, ``PrivateTest`` or ``all``.
    """
    path = Path(path)
    if path.is_dir():
        data = _load_folder(path)
    elif path.is_file():
        data = _load_csv(path)
    else:
        raise DatasetError(f"FER2013 data not found at {path}")
    selected = data.select(usage)
    if len(selected) == 0:
        raise DatasetError(f"{path} has no {usage} samples")
    return selected


def _load_csv(path: Path) -> FaceDataset:
    opener = gzip.open if path.suffix == ".gz" else open
    images, labels, usages = [], [], []
    with opener(path, "rt", newline="") as fh:
        reader = csv.DictReader(fh)
        needed = {"emotion", "pixels"}
        if reader.fieldnames is None or not needed <= set(reader.fieldnames):
            raise DatasetError(
                f"{path}: expected columns emotion,pixels[,Usage], got {reader.fieldnames}"
            )
        for line_no, row in enumerate(reader, start=2):
            try:
                label = int(row["emotion"])
                pixels = np.array(row["pixels"].split(), dtype=np.uint8)
            except ValueError as exc:
                raise DatasetError(f"{path}:{line_no}: bad row ({exc})") from exc
            if pixels.size != 48 * 48 or not 0 <= label < len(EMOTIONS):
                raise DatasetError(
                    f"{path}:{line_no}: expected 2304 pixels and a label 0-6, "
                    f"got {pixels.size} pixels and label {label}"
                )
            images.append(pixels.reshape(48, 48))
            labels.append(label)
            usages.append(row.get("Usage") or "Training")
    if not images:
        raise DatasetError(f"{path}: no rows")
    return FaceDataset(np.stack(images), np.array(labels, dtype=np.int64), np.array(usages))


def _usage_from_name(name: str, split: str) -> str:
    for prefix, usage in _FOLDER_PREFIX.items():
        if name.startswith(prefix):
            return usage
    return "Training" if split == "train" else "PublicTest"


def _load_folder(root: Path) -> FaceDataset:
    images, labels, usages = [], [], []
    for split in ("train", "test"):
        split_dir = root / split
        if not split_dir.is_dir():
            continue
        for class_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
            label_name = class_dir.name.lower()
            if label_name not in EMOTIONS:
                raise DatasetError(f"{class_dir}: unknown class folder; expected one of {EMOTIONS}")
            for file in sorted(class_dir.iterdir()):
                if not is_image_path(file):
                    continue
                img = cv2.imdecode(np.frombuffer(file.read_bytes(), np.uint8), cv2.IMREAD_GRAYSCALE)
                if img is None:
                    raise DatasetError(f"{file}: not a readable image")
                if img.shape != (48, 48):
                    img = cv2.resize(img, (48, 48), interpolation=cv2.INTER_AREA)
                images.append(img)
                labels.append(EMOTIONS.index(label_name))
                usages.append(_usage_from_name(file.name, split))
    if not images:
        raise DatasetError(f"{root}: no images under train/<class>/ or test/<class>/")
    return FaceDataset(np.stack(images), np.array(labels, dtype=np.int64), np.array(usages))


def write_csv(path: Path, data: FaceDataset) -> None:
    """Write a dataset in the Kaggle CSV layout (gzip when the name ends in .gz)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["emotion", "pixels", "Usage"])
    for img, label, usage in zip(data.images, data.labels, data.usage):
        writer.writerow([int(label), " ".join(map(str, img.reshape(-1).tolist())), usage])
    raw = buf.getvalue().encode()
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)


def sharpness(images: np.ndarray, n: int = 1000) -> float:
    """Median variance of the Laplacian over (up to) the first ``n`` images."""
    return float(np.median([cv2.Laplacian(im, cv2.CV_64F).var() for im in images[:n]]))


def estimate_blur_sigma(train_images: np.ndarray, reference_images: np.ndarray) -> float:
    """Gaussian sigma that makes sharp reference faces as smooth as the training faces.

    Some FER2013 mirrors ship blurred training images next to sharp test images; a model trained
    on them must see equally blurred inputs. Returns 0.0 when the training images are not
    markedly smoother than the reference (the normal case).
    """
    target = sharpness(train_images)
    reference = sharpness(reference_images)
    if target >= 0.25 * reference:
        return 0.0
    best, best_err = 0.0, float("inf")
    for sigma in np.arange(0.5, 6.01, 0.25):
        blurred = np.stack(
            [cv2.GaussianBlur(im, (0, 0), float(sigma)) for im in reference_images[:1000]]
        )
        err = abs(np.log(sharpness(blurred) + 1e-6) - np.log(target + 1e-6))
        if err < best_err:
            best, best_err = float(sigma), err
    return best


def blur_warning(train_images: np.ndarray, reference_images: np.ndarray) -> str | None:
    """A message when training faces are much smoother than the validation faces, else None.

    The FER2013 copy this project first trained on had Gaussian-blurred Training faces (median
    Laplacian variance about 6 against about 2,400 for PublicTest); a model trained on such faces
    misreads sharp camera faces. The data should be fixed, not the model.
    """
    sigma = estimate_blur_sigma(train_images, reference_images)
    if sigma <= 0:
        return None
    return (
        f"training faces are blurred compared with the validation faces: median Laplacian "
        f"variance {sharpness(train_images):.1f} vs {sharpness(reference_images):.1f} "
        f"(like a Gaussian blur of sigma {sigma:.2f} px); use the sharp originals"
    )
