"""`emostream predict --annotate`: files vs folders, missing folders, readable labels."""

import cv2
import numpy as np
import pytest

from emostream.cli.main import main
from emostream.cli.predict import LABEL_COLOUR, annotate


@pytest.fixture
def photos(tmp_path, astronaut_bgr):
    paths = []
    for name in ("a.jpg", "b.jpg"):
        paths.append(tmp_path / name)
        cv2.imwrite(str(paths[-1]), astronaut_bgr)
    return paths


def test_two_images_to_a_file_name_is_an_error_not_a_folder(photos, tmp_path, capsys):
    out = tmp_path / "out.jpg"
    assert main(["predict", *map(str, photos), "--annotate", str(out)]) == 2
    assert "pass a folder" in capsys.readouterr().err
    assert not out.exists()


def test_two_images_to_a_folder(photos, tmp_path):
    out = tmp_path / "annotated"
    assert main(["predict", *map(str, photos), "--annotate", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a_annotated.jpg", "b_annotated.jpg"]


def test_one_image_into_a_missing_directory_is_written(photos, tmp_path):
    out = tmp_path / "new" / "dir" / "face.png"
    assert main(["predict", str(photos[0]), "--annotate", str(out)]) == 0
    assert cv2.imread(str(out)).shape == (512, 512, 3)


def test_one_image_to_a_name_without_suffix_is_a_folder(photos, tmp_path):
    out = tmp_path / "results"
    assert main(["predict", str(photos[0]), "--annotate", str(out)]) == 0
    assert (out / "a_annotated.jpg").is_file()


def test_label_is_readable_at_one_to_one():
    image = np.zeros((2000, 2000, 3), np.uint8)
    face = {"box": [800, 800, 400, 400], "emotion": "happy", "probabilities": {"happy": 0.9}}
    out = annotate(image, [face])
    above = out[:800, 800:1600]
    rows = np.where((np.abs(above.astype(int) - LABEL_COLOUR).sum(axis=2) < 60).any(axis=1))[0]
    assert len(rows) >= 0.02 * 2000, f"label text {len(rows)} px high on a 2000 px image"
