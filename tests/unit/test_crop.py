import numpy as np
import pytest

from emostream.vision import crop, official_crop_box


def test_official_geometry_worked_example():
    # centre (140, 80); half = floor(floor(140 / 2) / 2) * 1.1 = 38.5
    assert official_crop_box(100, 50, 80, 60, 640, 480) == (101, 41, 178, 118)


def test_top_left_clamped_to_zero():
    # centre (10, 10), half 11.0 -> (-1, -1) clamped to 0
    assert official_crop_box(0, 0, 20, 20, 640, 480) == (0, 0, 21, 21)


def test_bottom_right_clipped_to_image():
    x1, y1, x2, y2 = official_crop_box(600, 440, 40, 40, 640, 480)
    assert (x2, y2) == (640, 480)
    assert x1 == int(620 - 22.0) and y1 == int(460 - 22.0)


def test_small_crops_are_skipped():
    assert official_crop_box(5, 5, 8, 8, 640, 480) is None  # 9 px wide


def test_odd_sizes_truncate_like_upstream():
    # w + h = 31 -> floor(15.5) = 15 -> floor(7.5) = 7 -> 7.7; centre (15 + 7, 20 + 8)
    assert official_crop_box(15, 20, 15, 16, 100, 100) == (14, 20, 29, 35)


@pytest.mark.parametrize("size", [(480, 640), (50, 50)])
def test_crop_slices_gray_image(size):
    gray = np.arange(size[0] * size[1], dtype=np.uint32).reshape(size).astype(np.uint8)
    box = official_crop_box(10, 10, 30, 30, size[1], size[0])
    out = crop(gray, box)
    assert out.shape == (box[3] - box[1], box[2] - box[0])
    assert out[0, 0] == gray[box[1], box[0]]
