import json

import cv2
import pytest

from emostream.cli.main import main
from emostream.models import EMOTIONS
from tests.conftest import REFERENCE_DATA

YUNET = REFERENCE_DATA / "models" / "face_detection_yunet_2026may.onnx"


@pytest.fixture
def photo(tmp_path, astronaut_bgr):
    path = tmp_path / "astronaut.jpg"
    cv2.imwrite(str(path), astronaut_bgr)
    return path


def test_predict_json_and_annotation(photo, tmp_path, capsys):
    out = tmp_path / "ann.jpg"
    assert main(["predict", str(photo), "--json", "--annotate", str(out)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result) == 1 and result[0]["image"] == str(photo)
    (face,) = result[0]["faces"]
    x, y, w, h = face["box"]
    assert 150 < x < 220 and 40 < y < 110 and w > 60
    assert list(face["probabilities"]) == list(EMOTIONS)
    assert face["emotion"] == max(face["probabilities"], key=face["probabilities"].get)
    assert cv2.imread(str(out)).shape == (512, 512, 3)


@pytest.mark.skipif(
    not YUNET.exists(), reason="YuNet model: reference data (EMOSTREAM_REFERENCE_DATA) not present"
)
def test_predict_with_yunet(photo, capsys):
    assert (
        main(["predict", str(photo), "--detector", "yunet", "--yunet-model", str(YUNET), "--json"])
        == 0
    )
    assert len(json.loads(capsys.readouterr().out)[0]["faces"]) == 1


def test_predict_missing_file_is_an_error(tmp_path, capsys):
    assert main(["predict", str(tmp_path / "none.jpg")]) == 2
    assert "no such image" in capsys.readouterr().err
