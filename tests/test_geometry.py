"""Geometry: component operations and measurements on drawn shapes with known sizes."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from thyroid_studio.engine import geometry as G


def _two_blobs() -> np.ndarray:
    m = np.zeros((30, 30), np.uint8)
    m[2:6, 2:6] = 1          # 16 px
    m[10:20, 10:20] = 1      # 100 px, with a hole
    m[14:16, 14:16] = 0
    return m


def test_components_and_largest():
    m = _two_blobs()
    assert G.components(m) == 2
    big = G.largest_component(m)
    assert big.dtype == bool and big.sum() == 96 and not big[3, 3]
    assert not G.largest_component(np.zeros((4, 4))).any()


def test_fill_holes():
    filled = G.fill_holes(_two_blobs())
    assert filled.sum() == 116 and filled[14, 14]
    edge = np.zeros((5, 5), bool)
    edge[:, 0:3] = True
    edge[2, 0] = False       # notch open to the border: not a hole
    assert not G.fill_holes(edge)[2, 0]


def test_keep_inside():
    m = _two_blobs()
    region = np.zeros_like(m)
    region[0:3, 0:3] = 1
    kept = G.keep_inside(m, region)
    assert kept.sum() == 16  # the whole small blob, although only 1 pixel overlaps
    with pytest.raises(ValueError):
        G.keep_inside(m, region[:5])


def test_contours():
    cs = G.contours(_two_blobs())
    assert len(cs) == 2
    assert all(c.ndim == 2 and c.shape[1] == 2 for c in cs)
    xs = sorted(int(c[:, 0].min()) for c in cs)
    assert xs == [2, 10]


def test_measure_rectangle_with_spacing():
    m = np.zeros((100, 200), bool)
    m[10:40, 20:120] = True   # 100 wide, 30 tall
    r = G.measure(m, spacing_mm=(0.2, 0.1))
    assert r.area_px == 3000 and r.area_mm2 == pytest.approx(60.0)
    assert r.bbox == (20, 10, 120, 40)
    assert (r.width_px, r.height_px) == (100, 30)
    assert r.width_mm == pytest.approx(10.0) and r.height_mm == pytest.approx(6.0)
    assert r.longest_mm == pytest.approx(np.hypot(10, 6))
    assert r.longest_px == pytest.approx(np.hypot(100, 30))
    assert not r.taller_than_wide
    (x0, y0), (x1, y1) = r.longest_ends
    assert {(x0, y0), (x1, y1)} in ({(19.5, 9.5), (119.5, 39.5)}, {(19.5, 39.5), (119.5, 9.5)})


def test_measure_ellipse_diameters():
    m = np.zeros((300, 400), np.uint8)
    cv2.ellipse(m, (200, 150), (120, 50), 35, 0, 360, 1, -1)
    r = G.measure(m)
    assert r.longest_px == pytest.approx(241, abs=2)
    assert r.perpendicular_px == pytest.approx(101, abs=2)
    assert r.longest_mm is None and r.area_mm2 is None
    a, b = (np.subtract(*r.longest_ends), np.subtract(*r.perpendicular_ends))
    assert abs(np.dot(a, b)) / (np.linalg.norm(a) * np.linalg.norm(b)) < 1e-6
    angle = np.degrees(np.arctan2(a[1], a[0])) % 180
    assert angle == pytest.approx(35, abs=2)


def test_taller_than_wide_uses_mm():
    m = np.zeros((100, 100), bool)
    m[10:60, 10:50] = True    # 40 wide, 50 tall in pixels
    assert G.measure(m).taller_than_wide
    assert not G.measure(m, spacing_mm=(0.1, 0.2)).taller_than_wide  # 5 mm tall, 8 mm wide


def test_measure_empty_and_single_pixel():
    assert G.measure(np.zeros((5, 5))) is None
    one = np.zeros((5, 5), bool)
    one[2, 2] = True
    r = G.measure(one)
    assert r.area_px == 1 and r.longest_px == pytest.approx(np.sqrt(2))


def test_measure_a_large_tilted_ellipse():
    """A 600 x 360 px ellipse tilted by 20 degrees on a 1280x960 frame, 0.1 mm pixels."""
    m = np.zeros((960, 1280), np.uint8)
    cv2.ellipse(m, (640, 480), (300, 180), 20, 0, 360, 1, -1)
    r = G.measure(m, (0.1, 0.1))
    assert r.longest_mm == pytest.approx(60.0, abs=0.3)
    assert r.perpendicular_mm == pytest.approx(36.0, abs=0.3)
    assert not r.taller_than_wide


def test_select_component_picks_the_nodule_clicked_or_the_largest():
    m = _two_blobs()
    assert G.select_component(m).sum() == 96  # default: the largest
    small = G.select_component(m, (3, 3))  # (x, y) inside the small blob
    assert small.sum() == 16 and small[3, 3]
    assert G.select_component(m, (7, 1)).sum() == 16  # beside it: the nearest
    assert not G.select_component(np.zeros((5, 5)), (1, 1)).any()
    two = m.copy()
    two[10:20, 10:20] = 1
    alone = G.measure(G.select_component(two, (15, 15)))
    assert alone.height_px == 10 and G.measure(two).height_px == 18  # one nodule, not both


def test_caliper_length_in_pixels_and_millimetres():
    caliper = G.Caliper((0.0, 0.0), (30.0, 40.0))
    assert caliper.length_px == pytest.approx(50)
    assert caliper.length_mm(None) is None
    assert caliper.length_mm((0.5, 0.1)) == pytest.approx(np.hypot(30 * 0.1, 40 * 0.5))
