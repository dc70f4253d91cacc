"""Segmentation metrics per image and pooled over all pixels; HD95 in pixels and millimetres.

Every ratio is computed from the confusion counts (tp, fp, fn, tn). A ratio whose
denominator is zero (0/0) is **1 when prediction and ground truth agree on every
pixel, and nan (undefined) otherwise** -- never the reference code's "TP = 1" hack:

- gt and pred both empty: dice = iou = precision = recall = 1, hd95 = 0;
- pred empty, gt not: dice = iou = recall = 0, precision = nan, hd95 = nan;
- gt empty, pred not: dice = iou = precision = 0, recall = nan, hd95 = nan.

The same rule covers the background (specificity, iou_background) when a mask is all
foreground. Means over images skip nan values and report how many were defined.

HD95 follows medpy's ``hd95``: boundary pixels are the mask pixels with a 4-neighbour
outside the mask (the image edge counts as outside); the distances from each boundary
of one mask to the nearest boundary pixel of the other, in both directions, are pooled
and their 95th percentile taken. Distances are exact Euclidean between pixel centres,
in millimetres with ``spacing_mm = (row_mm, col_mm)`` (anisotropic spacing handled exactly).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

OVERLAP_KEYS = ("dice", "iou", "precision", "recall", "specificity", "accuracy", "f1",
                "iou_background", "miou")
KEYS = OVERLAP_KEYS + ("hd95_px", "hd95_mm")
_CHUNK = 1 << 20  # elements per block in the anisotropic distance search


def confusion(pred: np.ndarray, gt: np.ndarray) -> tuple[int, int, int, int]:
    """(tp, fp, fn, tn) of two masks of the same shape, each boolean-ised (nonzero = nodule)."""
    pred, gt = _as_bool(pred, gt)
    tp = int(np.count_nonzero(pred & gt))
    fp = int(np.count_nonzero(pred)) - tp
    fn = int(np.count_nonzero(gt)) - tp
    return tp, fp, fn, pred.size - tp - fp - fn


def overlap_metrics(tp: int, fp: int, fn: int, tn: int) -> dict[str, float]:
    """The ratio metrics of one confusion (no distances); 0/0 follows the module's rule."""
    agree = fp == 0 and fn == 0

    def ratio(num: int, den: int) -> float:
        if den == 0:
            return 1.0 if agree else math.nan
        return num / den

    dice = ratio(2 * tp, 2 * tp + fp + fn)
    iou = ratio(tp, tp + fp + fn)
    iou_bg = ratio(tn, tn + fp + fn)
    return {
        "dice": dice,
        "iou": iou,
        "precision": ratio(tp, tp + fp),
        "recall": ratio(tp, tp + fn),
        "specificity": ratio(tn, tn + fp),
        "accuracy": ratio(tp + tn, tp + fp + fn + tn),
        "f1": dice,
        "iou_background": iou_bg,
        "miou": (iou + iou_bg) / 2,
    }


def dice(pred: np.ndarray, gt: np.ndarray) -> float:
    """Dice only (no distances: cheap enough to refresh while painting); 1 when both are empty."""
    return float(overlap_metrics(*confusion(pred, gt))["dice"])


def binary_metrics(pred: np.ndarray, gt: np.ndarray,
                   spacing_mm: tuple[float, float] | None = None) -> dict[str, float]:
    """All metrics of one image (keys in ``KEYS``); hd95_mm is nan without a spacing."""
    pred, gt = _as_bool(pred, gt)
    out = overlap_metrics(*confusion(pred, gt))
    out["hd95_px"] = hd95(pred, gt)
    out["hd95_mm"] = hd95(pred, gt, spacing_mm) if spacing_mm is not None else math.nan
    return out


def boundary(mask: np.ndarray) -> np.ndarray:
    """Mask pixels with a 4-neighbour outside the mask (pixels on the image edge included)."""
    m = mask.astype(np.uint8)
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    eroded = cv2.erode(m, cross, borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return (m > 0) & (eroded == 0)


def surface_distances(a: np.ndarray, b: np.ndarray,
                      spacing_mm: tuple[float, float] | None = None) -> np.ndarray:
    """Distance from each boundary pixel of ``a`` to the nearest boundary pixel of ``b``.

    Pixel units, or millimetres with ``spacing_mm``; both masks must be non-empty.
    """
    ba, bb = boundary(a), boundary(b)
    sr, sc = (1.0, 1.0) if spacing_mm is None else (float(spacing_mm[0]), float(spacing_mm[1]))
    if sr == sc:
        dt = cv2.distanceTransform((~bb).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        return dt[ba].astype(np.float64) * sr
    return _anisotropic_distances(ba, bb, sr, sc)


def _anisotropic_distances(ba: np.ndarray, bb: np.ndarray, sr: float, sc: float) -> np.ndarray:
    """Exact nearest distances with unequal row/column spacing.

    First, per column, the vertical distance (rows) to the nearest ``bb`` pixel in that
    column; then for each ``ba`` pixel the minimum over all columns of
    (rows * sr)^2 + (column offset * sc)^2 -- exact, and O(points x width).
    """
    h, w = bb.shape
    rows = np.arange(h, dtype=np.float64)[:, None]
    above = np.maximum.accumulate(np.where(bb, rows, -np.inf), axis=0)
    below = np.minimum.accumulate(np.where(bb, rows, np.inf)[::-1], axis=0)[::-1]
    vert2 = (np.minimum(rows - above, below - rows) * sr) ** 2  # (h, w), inf where column empty
    r, c = np.nonzero(ba)
    cols = np.arange(w, dtype=np.float64)
    out = np.empty(r.size)
    step = max(1, _CHUNK // w)
    for i in range(0, r.size, step):
        rr, cc = r[i:i + step], c[i:i + step]
        horiz2 = ((cc[:, None] - cols[None, :]) * sc) ** 2
        out[i:i + step] = np.sqrt((vert2[rr] + horiz2).min(axis=1))
    return out


def hd95(pred: np.ndarray, gt: np.ndarray, spacing_mm: tuple[float, float] | None = None) -> float:
    """Symmetric 95th-percentile Hausdorff distance; 0 when both empty, nan when one is."""
    pred, gt = _as_bool(pred, gt)
    has_p, has_g = bool(pred.any()), bool(gt.any())
    if not has_p and not has_g:
        return 0.0
    if not (has_p and has_g):
        return math.nan
    d = np.concatenate([surface_distances(pred, gt, spacing_mm), surface_distances(gt, pred, spacing_mm)])
    return float(np.percentile(d, 95))


@dataclass
class MetricAccumulator:
    """Collects per-image metrics and the summed confusion for pooled metrics."""

    per_image: list[dict] = field(default_factory=list)
    _counts: np.ndarray = field(default_factory=lambda: np.zeros(4, dtype=np.int64), repr=False)

    def add(self, pred: np.ndarray, gt: np.ndarray,
            spacing_mm: tuple[float, float] | None = None, name: str | None = None) -> dict:
        """Score one image; returns (and keeps) its dict: ``name`` plus every metric."""
        m = binary_metrics(pred, gt, spacing_mm)
        self._counts += np.array(confusion(pred, gt), dtype=np.int64)
        row = {"name": name, **m}
        self.per_image.append(row)
        return row

    def summary(self) -> dict:
        """{"n", "per_image": {metric: {"mean", "std", "n_defined"}}, "pooled": {metric: value}}.

        std is the population standard deviation over the defined values.
        """
        per = {}
        for key in KEYS:
            vals = np.array([row[key] for row in self.per_image], dtype=np.float64)
            vals = vals[~np.isnan(vals)]
            per[key] = {
                "mean": float(vals.mean()) if vals.size else math.nan,
                "std": float(vals.std()) if vals.size else math.nan,
                "n_defined": int(vals.size),
            }
        if self.per_image:
            pooled = overlap_metrics(*(int(v) for v in self._counts))
        else:
            pooled = {key: math.nan for key in OVERLAP_KEYS}
        return {"n": len(self.per_image), "per_image": per, "pooled": pooled}


_TABLE = (("Jaccard %", "iou", 100), ("Dice %", "dice", 100), ("Precision %", "precision", 100),
          ("Recall %", "recall", 100), ("Specificity %", "specificity", 100),
          ("Accuracy %", "accuracy", 100), ("mIoU %", "miou", 100),
          ("HD95 px", "hd95_px", 1), ("HD95 mm", "hd95_mm", 1))


def format_table(summary: dict) -> str:
    """Paper-style table: a per-image row (mean ± std) and a pooled row; notes for partly defined metrics."""
    n = summary["n"]
    header = ["", *(title for title, _, _ in _TABLE)]
    per_row, pooled_row, notes = [f"per image (n={n})"], ["pooled"], []
    for title, key, scale in _TABLE:
        stats = summary["per_image"][key]
        per_row.append(_mean_std(stats["mean"], stats["std"], scale))
        pooled_row.append(f"{summary['pooled'][key] * scale:.2f}" if key in summary["pooled"] else "-")
        if stats["n_defined"] < n:
            notes.append(f"{title}: defined on {stats['n_defined']} of {n} images")
    rows = [header, per_row, pooled_row]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(wd) for cell, wd in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines + notes)


def _mean_std(mean: float, std: float, scale: float) -> str:
    if math.isnan(mean):
        return "-"
    return f"{mean * scale:.2f} ± {std * scale:.2f}"


def _as_bool(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from ground truth shape {gt.shape}")
    return pred.astype(bool, copy=False), gt.astype(bool, copy=False)
