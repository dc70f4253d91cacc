"""Metrics: hand-computed cases, every empty case, HD95 against brute force, pooled vs per image."""
from __future__ import annotations

import math

import numpy as np
import pytest

from thyroid_studio.engine import metrics as M


def _mask(rows: list[str]) -> np.ndarray:
    return np.array([[c == "#" for c in row] for row in rows])


PRED = _mask(["##..",
              "##..",
              "..#.",
              "...."])
GT = _mask(["#...",
            "##..",
            "##..",
            "...."])


def test_confusion_hand_computed():
    assert M.confusion(PRED, GT) == (3, 2, 2, 9)


def test_confusion_shape_mismatch():
    with pytest.raises(ValueError, match="shape"):
        M.confusion(np.zeros((4, 4)), np.zeros((4, 5)))


def test_binary_metrics_hand_computed():
    m = M.binary_metrics(PRED, GT)
    assert m["dice"] == pytest.approx(6 / 10)
    assert m["f1"] == m["dice"]
    assert m["iou"] == pytest.approx(3 / 7)
    assert m["precision"] == pytest.approx(3 / 5)
    assert m["recall"] == pytest.approx(3 / 5)
    assert m["specificity"] == pytest.approx(9 / 11)
    assert m["accuracy"] == pytest.approx(12 / 16)
    assert m["iou_background"] == pytest.approx(9 / 13)
    assert m["miou"] == pytest.approx((3 / 7 + 9 / 13) / 2)
    assert math.isnan(m["hd95_mm"])
    assert set(m) == set(M.KEYS)


def test_both_empty():
    z = np.zeros((5, 5), bool)
    m = M.binary_metrics(z, z, spacing_mm=(0.1, 0.1))
    for key in ("dice", "iou", "precision", "recall", "specificity", "accuracy", "miou"):
        assert m[key] == 1.0, key
    assert m["hd95_px"] == 0.0 and m["hd95_mm"] == 0.0


def test_pred_empty_gt_not():
    z = np.zeros((4, 4), bool)
    m = M.binary_metrics(z, GT, spacing_mm=(1, 1))
    assert m["dice"] == m["iou"] == m["recall"] == 0.0
    assert math.isnan(m["precision"])
    assert math.isnan(m["hd95_px"]) and math.isnan(m["hd95_mm"])
    assert m["specificity"] == 1.0


def test_gt_empty_pred_not():
    z = np.zeros((4, 4), bool)
    m = M.binary_metrics(PRED, z)
    assert m["dice"] == m["iou"] == m["precision"] == 0.0
    assert math.isnan(m["recall"]) and math.isnan(m["hd95_px"])


def test_all_foreground_background_metrics():
    full = np.ones((3, 3), bool)
    assert M.binary_metrics(full, full)["specificity"] == 1.0
    part = full.copy()
    part[0, 0] = False
    m = M.binary_metrics(part, full)
    assert math.isnan(m["specificity"]) and m["iou_background"] == 0.0


def _brute_hd95(a: np.ndarray, b: np.ndarray, spacing=(1.0, 1.0)) -> float:
    pa = np.argwhere(M.boundary(a)) * np.asarray(spacing)
    pb = np.argwhere(M.boundary(b)) * np.asarray(spacing)
    d = np.sqrt(((pa[:, None] - pb[None]) ** 2).sum(-1))
    return float(np.percentile(np.concatenate([d.min(1), d.min(0)]), 95))


def test_boundary_includes_image_edge():
    full = np.ones((3, 4), bool)
    assert M.boundary(full).sum() == 10  # all but the 2 inner pixels


@pytest.mark.parametrize("spacing", [None, (0.3, 0.3), (0.5, 0.2), (0.1, 0.35)])
def test_hd95_matches_brute_force(spacing):
    rng = np.random.default_rng(7)
    for _ in range(5):
        a = rng.random((23, 31)) < 0.3
        b = rng.random((23, 31)) < 0.3
        expected = _brute_hd95(a, b, spacing or (1.0, 1.0))
        assert M.hd95(a, b, spacing) == pytest.approx(expected, rel=1e-5)


def test_hd95_shifted_square():
    a = np.zeros((40, 40), bool)
    a[10:20, 10:20] = True
    b = np.roll(a, 3, axis=1)
    assert M.hd95(a, b) == pytest.approx(3.0)
    assert M.binary_metrics(a, b, spacing_mm=(2.0, 0.5))["hd95_mm"] == pytest.approx(1.5)


def test_accumulator_pooled_vs_per_image():
    acc = M.MetricAccumulator()
    big_p = np.zeros((10, 10), bool)
    big_p[:5] = True               # 50 px, perfect
    small_g = np.zeros((10, 10), bool)
    small_g[0, :2] = True          # 2 px gt, prediction empty
    row = acc.add(big_p, big_p, name="a")
    assert row["name"] == "a" and row["dice"] == 1.0
    acc.add(np.zeros((10, 10), bool), small_g, spacing_mm=(0.1, 0.1))
    s = acc.summary()
    assert s["n"] == 2 and len(acc.per_image) == 2
    assert s["per_image"]["dice"]["mean"] == pytest.approx(0.5)
    assert s["per_image"]["dice"]["std"] == pytest.approx(0.5)
    assert s["per_image"]["precision"] == {"mean": 1.0, "std": 0.0, "n_defined": 1}
    assert s["per_image"]["hd95_mm"]["n_defined"] == 0
    assert s["pooled"]["dice"] == pytest.approx(100 / 102)
    assert s["pooled"]["recall"] == pytest.approx(50 / 52)
    assert s["pooled"]["precision"] == 1.0
    assert "hd95_px" not in s["pooled"]


def test_format_table():
    acc = M.MetricAccumulator()
    acc.add(PRED, GT)
    acc.add(np.zeros((4, 4), bool), GT)
    text = M.format_table(acc.summary())
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["Jaccard", "%"]
    assert lines[0].index("Jaccard") < lines[0].index("Dice") < lines[0].index("Precision") < lines[0].index("HD95")
    assert "21.43 ± 21.43" in lines[1]       # Jaccard 3/7 and 0
    assert lines[2].startswith("pooled")
    assert "Precision %: defined on 1 of 2 images" in text


def test_empty_accumulator():
    s = M.MetricAccumulator().summary()
    assert s["n"] == 0 and math.isnan(s["per_image"]["dice"]["mean"])
