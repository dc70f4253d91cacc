"""One evaluation of a Segmenter against ground truth, used by training, fine-tuning and `evaluate`.

Masks are scored at each frame's original resolution (what users get), per image and
pooled (``metrics.MetricAccumulator``). Where the model has a gland head, the region
prior is measured on nodule frames: the share of the true nodule that the predicted
gland covers, and the gland's share of the frame (a gland everywhere covers everything
and tells nothing). Where the model has findings heads and the frames have labels, the
predicted findings are kept with the labels for the classification metrics.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .findings import FIELDS, Findings, PredictedFindings
from .inference import Segmentation, Segmenter
from .metrics import MetricAccumulator

EVAL_BATCH = 16


@dataclass(frozen=True)
class Case:
    """One frame to score: its pixels, its ground-truth mask (of the scored head) and, for nodules, its findings."""

    key: str
    frame: np.ndarray
    mask: np.ndarray  # bool, frame-sized
    spacing_mm: tuple[float, float] | None = None
    findings: Findings | None = None


def rank_auc(scores: Sequence[float], positives: Sequence[bool]) -> float:
    """Area under the ROC curve (the Mann-Whitney statistic, ties counted half); NaN without both classes."""
    scores, positives = np.asarray(scores, float), np.asarray(positives, bool)
    pos, neg = scores[positives], scores[~positives]
    if not len(pos) or not len(neg):
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def balanced_accuracy(true: Sequence[int], predicted: Sequence[int]) -> float:
    """Mean over the classes present of the recall of each class; NaN for no frames."""
    true, predicted = np.asarray(true), np.asarray(predicted)
    classes = np.unique(true)
    return float(np.mean([(predicted[true == c] == c).mean() for c in classes])) if len(classes) else float("nan")


@dataclass
class Evaluation:
    """Scores accumulated frame by frame; :meth:`summary` gives the numbers, ``rows`` the per-frame ones."""

    head: str = "nodule"
    masks: MetricAccumulator = field(default_factory=MetricAccumulator)
    prior: list[dict[str, Any]] = field(default_factory=list)  # per nodule frame: coverage, gland share
    findings: list[tuple[str, PredictedFindings, Findings]] = field(default_factory=list)

    def add(self, case: Case, result: Segmentation) -> None:
        predicted = result.nodule_mask if self.head == "nodule" else result.gland_mask
        self.masks.add(predicted, case.mask, case.spacing_mm, name=case.key)
        if self.head != "nodule":
            return
        if result.gland_mask is not None and case.mask.any():
            self.prior.append({"case": case.key, "coverage": float(result.gland_mask[case.mask].mean()),
                               "gland_share": float(result.gland_mask.mean())})
        if result.findings is not None and case.findings:
            self.findings.append((case.key, result.findings, case.findings))

    def prior_summary(self) -> dict[str, Any] | None:
        """Median/mean coverage of the true nodule by the predicted gland, and the gland's mean share of the frame."""
        if not self.prior:
            return None
        coverage = np.array([p["coverage"] for p in self.prior])
        return {"n": len(coverage), "coverage_median": float(np.median(coverage)), "coverage_mean": float(coverage.mean()),
                "coverage_p10": float(np.percentile(coverage, 10)),
                "gland_share_mean": float(np.mean([p["gland_share"] for p in self.prior]))}

    def findings_summary(self) -> dict[str, Any] | None:
        """AUC of P(suspicious), balanced accuracy of the TI-RADS category, accuracy of each descriptor."""
        if not self.findings:
            return None
        out: dict[str, Any] = {}
        labelled = [(p, f) for _, p, f in self.findings if f.suspicious is not None]
        out["suspicious"] = {"n": len(labelled), "auc": rank_auc([p.suspicious for p, _ in labelled], [f.suspicious for _, f in labelled])}
        for name, classes in FIELDS.items():
            pairs = [(p.most_likely().get(name), f.get(name)) for _, p, f in self.findings if f.get(name) and name in p.probabilities]
            if not pairs:
                continue
            true = [classes.index(t) for _, t in pairs]
            pred = [classes.index(p) for p, _ in pairs]
            out[name] = {"n": len(pairs), "accuracy": float(np.mean(np.equal(true, pred))),
                         "balanced_accuracy": balanced_accuracy(true, pred)}
        return out

    def summary(self) -> dict[str, Any]:
        summary = self.masks.summary()
        for key, value in (("gland_prior", self.prior_summary()), ("findings", self.findings_summary())):
            if value is not None:
                summary[key] = value
        return summary

    def rows(self) -> list[dict[str, Any]]:
        """Per-frame rows: mask metrics, the prior's coverage, and predicted vs known findings."""
        prior = {p["case"]: p for p in self.prior}
        found = {key: (p, f) for key, p, f in self.findings}
        rows = []
        for row in self.masks.per_image:
            key = row.get("name")
            row = dict(row)
            if key in prior:
                row.update(coverage=prior[key]["coverage"], gland_share=prior[key]["gland_share"])
            if key in found:
                predicted, known = found[key]
                row.update(suspicious_prob=predicted.suspicious, predicted=dict(predicted.most_likely().values),
                           known=dict(known.values))
            rows.append(row)
        return rows


def _chunks(cases: Iterable[Case], size: int) -> Iterator[list[Case]]:
    chunk: list[Case] = []
    for case in cases:
        chunk.append(case)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def evaluate(segmenter: Segmenter, cases: Iterable[Case], head: str = "nodule", batch: int = EVAL_BATCH) -> Evaluation:
    """Run ``segmenter`` over ``cases`` in batches and score its ``head`` ("nodule" or "gland")."""
    evaluation = Evaluation(head)
    for chunk in _chunks(cases, batch):
        for case, result in zip(chunk, segmenter.segment([c.frame for c in chunk])):
            evaluation.add(case, result)
    return evaluation
