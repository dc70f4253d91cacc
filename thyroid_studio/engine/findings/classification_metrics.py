"""Classification metrics on plain arrays, and the findings of a set of frames scored with them.

ROC AUC (with a percentile bootstrap interval, exam-grouped when groups are given),
accuracy, balanced accuracy, per-class accuracy, the confusion matrix, reliability bins and
the expected calibration error, and one figure of a confusion matrix beside a reliability
diagram. Every function takes plain arrays and an optional boolean ``known`` mask: samples
whose label is unknown (False) are left out.

Conventions: a confusion matrix has true classes in rows and predicted classes in columns;
balanced accuracy is the mean recall over the classes present in the truth (as
scikit-learn's ``balanced_accuracy_score``); the AUC counts ties as one half (the
Mann-Whitney statistic) and is nan when only one class is present; the expected calibration
error is the count-weighted mean of |observed frequency - mean predicted probability| over
equal-width probability bins (Guo et al., "On calibration of modern neural networks",
ICML 2017).
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io.files import atomic_path
from ..nets.findings_head import SUSPICIOUS
from .fields import FIELDS, Findings, PredictedFindings

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
RELIABILITY_BINS = 10
SUSPICIOUS_CLASSES = ("not suspicious", "suspicious")


def _select(known: np.ndarray | None, *arrays) -> list[np.ndarray]:
    """The arrays restricted to the known samples (all of them when ``known`` is None)."""
    arrays = [np.asarray(a) for a in arrays]
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError(f"arrays of different lengths: {[len(a) for a in arrays]}")
    if known is None:
        return arrays
    known = np.asarray(known, dtype=bool)
    if known.shape != (n,):
        raise ValueError(f"known mask of shape {known.shape} for {n} samples")
    return [a[known] for a in arrays]


def roc_auc(y_true, score, known=None) -> float:
    """Area under the ROC curve of ``score`` for the positives of ``y_true`` (bool/0-1); nan with one class."""
    y, s = _select(known, y_true, score)
    y, s = y.astype(bool), s.astype(np.float64)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    _, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2)[inverse]  # 1-based ranks, ties averaged
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@dataclass(frozen=True)
class Interval:
    """A statistic with its bootstrap percentile interval; ``resamples`` counts the resamples it was defined on."""

    value: float
    low: float
    high: float
    resamples: int
    level: float = 0.95


def bootstrap_interval(y_true, score, statistic: Callable[[np.ndarray, np.ndarray], float] = roc_auc, *,
                       known=None, groups: Sequence[Hashable] | None = None,
                       resamples: int = BOOTSTRAP_RESAMPLES, level: float = 0.95, seed: int = BOOTSTRAP_SEED) -> Interval:
    """``statistic(y_true, score)`` with a percentile bootstrap interval (fixed seed: reproducible).

    With ``groups`` (e.g. exam ids) whole groups are resampled, so frames of one exam stay
    together, as in the exam-grouped splits. Resamples where the statistic is undefined (nan,
    e.g. one class only) are left out and not counted.
    """
    ids = np.arange(len(y_true)) if groups is None else np.array([str(g) for g in groups])
    y, s, ids = _select(known, y_true, score, ids)
    value = statistic(y, s)
    if not len(y):
        return Interval(value, math.nan, math.nan, 0, level)
    _, group_of = np.unique(ids, return_inverse=True)
    members = [np.flatnonzero(group_of == k) for k in range(group_of.max() + 1)]
    rng = np.random.default_rng(seed)
    stats = np.array([
        statistic(y[index], s[index])
        for index in (np.concatenate([members[k] for k in rng.integers(0, len(members), len(members))])
                      for _ in range(resamples))
    ], dtype=np.float64)
    stats = stats[~np.isnan(stats)]
    if not stats.size:
        return Interval(value, math.nan, math.nan, 0, level)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(stats, [tail, 100 - tail])
    return Interval(value, float(low), float(high), int(stats.size), level)


def accuracy(y_true, y_pred, known=None) -> float:
    """Fraction of equal labels; nan with no sample."""
    t, p = _select(known, y_true, y_pred)
    return float(np.mean(t == p)) if t.size else math.nan


def confusion_matrix(y_true, y_pred, n_classes: int, known=None) -> np.ndarray:
    """(n_classes, n_classes) counts: row = true class index, column = predicted class index."""
    t, p = _select(known, y_true, y_pred)
    t, p = t.astype(int), p.astype(int)
    if t.size and (min(t.min(), p.min()) < 0 or max(t.max(), p.max()) >= n_classes):
        raise ValueError(f"class indices must be in 0..{n_classes - 1}")
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (t, p), 1)
    return matrix


def per_class_accuracy(matrix: np.ndarray) -> np.ndarray:
    """Recall of each true class (the diagonal over the row sums); nan for a class absent from the truth."""
    matrix = np.asarray(matrix, dtype=np.float64)
    rows = matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(rows > 0, np.diag(matrix) / rows, math.nan)


def balanced_accuracy(matrix: np.ndarray) -> float:
    """Mean recall over the classes present in the truth; nan with no sample."""
    recall = per_class_accuracy(matrix)
    recall = recall[~np.isnan(recall)]
    return float(recall.mean()) if recall.size else math.nan


def majority_accuracy(matrix: np.ndarray) -> float:
    """Accuracy of always answering the most frequent true class (the baseline a classifier must beat)."""
    matrix = np.asarray(matrix)
    total = matrix.sum()
    return float(matrix.sum(axis=1).max() / total) if total else math.nan


@dataclass(frozen=True)
class Reliability:
    """Equal-width bins of predicted probability: how many fell in each, their mean probability and
    the observed frequency of the event there (nan in an empty bin)."""

    edges: np.ndarray  # (bins + 1,)
    counts: np.ndarray  # (bins,)
    confidence: np.ndarray  # (bins,) mean predicted probability
    frequency: np.ndarray  # (bins,) observed fraction of events

    @property
    def ece(self) -> float:
        """Expected calibration error: count-weighted mean |frequency - confidence|; nan with no sample."""
        total = self.counts.sum()
        if not total:
            return math.nan
        filled = self.counts > 0
        gaps = np.abs(self.frequency[filled] - self.confidence[filled])
        return float((self.counts[filled] * gaps).sum() / total)


def reliability(event, probability, bins: int = RELIABILITY_BINS, known=None) -> Reliability:
    """Reliability bins of ``probability`` for the boolean ``event``; a probability of 1 falls in the last bin."""
    e, p = _select(known, event, probability)
    e, p = e.astype(bool), p.astype(np.float64)
    if p.size and (p.min() < 0 or p.max() > 1):
        raise ValueError("probabilities must lie in [0, 1]")
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, bins - 1)
    counts = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.bincount(index, weights=p, minlength=bins) / counts
        frequency = np.bincount(index, weights=e.astype(np.float64), minlength=bins) / counts
    return Reliability(edges, counts, confidence, frequency)


def top_label(y_true, probabilities, known=None) -> tuple[np.ndarray, np.ndarray]:
    """(correct, confidence) of the most probable class of each row of ``probabilities`` (N, classes):
    what a multi-class reliability diagram bins."""
    t, probs = _select(known, y_true, probabilities)
    probs = probs.astype(np.float64)
    if probs.ndim != 2:
        raise ValueError(f"probabilities must be (samples, classes), got shape {probs.shape}")
    return probs.argmax(axis=1) == t.astype(int), probs.max(axis=1)


# ------------------------------------------------------------------ findings of a set of frames


def _class_scores(truth: np.ndarray, probs: np.ndarray, classes: Sequence[str]) -> dict:
    """Accuracy, balanced and majority accuracy, per-class accuracy, confusion and reliability of one finding."""
    predicted = probs.argmax(axis=1)
    matrix = confusion_matrix(truth, predicted, len(classes))
    if len(classes) == 2:  # binary: calibration of P(positive class), the number a user reads
        bins = reliability(truth == 1, probs[:, 1])
    else:
        bins = reliability(*top_label(truth, probs))
    return {
        "n": int(len(truth)),
        "classes": list(classes),
        "accuracy": accuracy(truth, predicted),
        "balanced_accuracy": balanced_accuracy(matrix),
        "majority_accuracy": majority_accuracy(matrix),
        "per_class_accuracy": dict(zip(classes, per_class_accuracy(matrix).tolist())),
        "confusion": matrix.tolist(),
        "ece": bins.ece,
        "reliability": {"edges": bins.edges.tolist(), "counts": bins.counts.tolist(),
                        "confidence": bins.confidence.tolist(), "frequency": bins.frequency.tolist()},
    }


def findings_metrics(truths: Sequence[Findings], predictions: Sequence[PredictedFindings],
                     groups: Sequence[Hashable] | None = None, seed: int = BOOTSTRAP_SEED) -> dict[str, dict]:
    """Score predicted findings against known ones, frame by frame: {"suspicious": ..., field: ...}.

    Each entry holds ``n`` (frames whose label is known), the accuracies, the confusion matrix and
    the reliability bins; "suspicious" adds the AUC of P(suspicious) with its 95 % bootstrap
    interval (exam-grouped when ``groups`` are given) and the threshold-0.5 decisions. A field the
    model does not predict, or with no known label, is left out.
    """
    if len(truths) != len(predictions) or (groups is not None and len(groups) != len(truths)):
        raise ValueError("truths, predictions and groups must have one entry per frame")
    out: dict[str, dict] = {}
    known = np.array([t.suspicious is not None for t in truths], dtype=bool)
    if known.any():
        y = np.array([bool(t.suspicious) for t in truths])
        p = np.array([pred.suspicious for pred in predictions], dtype=np.float64)
        entry = _class_scores(y[known].astype(int), np.stack([1 - p[known], p[known]], axis=1), SUSPICIOUS_CLASSES)
        auc = bootstrap_interval(y, p, known=known, groups=groups, seed=seed)
        entry.update(positives=int(y[known].sum()), auc=auc.value, auc_low=auc.low, auc_high=auc.high,
                     auc_resamples=auc.resamples, grouped=groups is not None)
        out[SUSPICIOUS] = entry
    for name, classes in FIELDS.items():
        rows = [(classes.index(t.get(name)), [pred.probabilities[name][c] for c in classes])
                for t, pred in zip(truths, predictions) if t.get(name) is not None and name in pred.probabilities]
        if rows:
            out[name] = _class_scores(np.array([r[0] for r in rows]), np.array([r[1] for r in rows]), classes)
    return out


def format_findings_table(metrics: dict[str, dict]) -> str:
    """One row per finding: n, accuracy, balanced accuracy, majority-class accuracy, ECE, AUC [95 % CI]."""
    def num(value: float | None) -> str:
        return "-" if value is None or math.isnan(value) else f"{value:.3f}"

    header = ["finding", "n", "accuracy", "balanced acc", "majority acc", "ECE", "AUC [95% CI]"]
    rows = [header]
    for name, m in metrics.items():
        auc = f"{num(m['auc'])} [{num(m['auc_low'])}, {num(m['auc_high'])}]" if "auc" in m else "-"
        rows.append([name, str(m["n"]), num(m["accuracy"]), num(m["balanced_accuracy"]),
                     num(m["majority_accuracy"]), num(m["ece"]), auc])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows)


def write_figure(path: str | os.PathLike, confusion: np.ndarray, class_names: Sequence[str], bins: Reliability,
                 title: str = "", dpi: int = 110) -> Path:
    """A confusion matrix (counts; colour = row fraction) beside a reliability diagram, written atomically
    in the format of the path's suffix (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(confusion)
    fig, (ax_c, ax_r) = plt.subplots(1, 2, figsize=(10, 4.4))
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = matrix / matrix.sum(axis=1, keepdims=True)
    ax_c.imshow(np.nan_to_num(fraction), cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(matrix):
        ax_c.text(j, i, str(count), ha="center", va="center", color="white" if np.nan_to_num(fraction[i, j]) > 0.5 else "black")
    ticks = range(len(class_names))
    ax_c.set_xticks(ticks, class_names, rotation=35, ha="right")
    ax_c.set_yticks(ticks, class_names)
    ax_c.set_xlabel("predicted")
    ax_c.set_ylabel("true")
    ax_c.set_title("confusion matrix")
    centres = (bins.edges[:-1] + bins.edges[1:]) / 2
    width = np.diff(bins.edges)
    ax_r.bar(centres, np.nan_to_num(bins.frequency), width=width * 0.9, color="tab:blue", alpha=0.7, label="observed")
    ax_r.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
    filled = bins.counts > 0
    ax_r.plot(bins.confidence[filled], bins.frequency[filled], "o-", color="tab:red", label="per bin")
    for x, n in zip(centres, bins.counts):
        if n:
            ax_r.text(x, 0.02, str(n), ha="center", fontsize=7)
    ax_r.set_xlim(0, 1)
    ax_r.set_ylim(0, 1)
    ax_r.set_xlabel("predicted probability")
    ax_r.set_ylabel("observed frequency")
    ax_r.set_title(f"reliability (ECE {bins.ece:.3f})")
    ax_r.legend(loc="upper left", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
    return path
