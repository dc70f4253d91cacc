"""One evaluation of a Segmenter against ground truth, used by training, fine-tuning and `evaluate`.

Masks are scored at each frame's original resolution (what users get), per image and
pooled (``metrics.MetricAccumulator``). Where the model has a gland head, the region
prior is measured on nodule frames: the share of the true nodule that the predicted
gland covers, and the gland's share of the ultrasound image (the frame without its borders
and burnt-in text; a gland everywhere covers everything and tells nothing). Where the model has findings heads and the frames have labels, the
predicted findings are kept with the labels for the classification metrics.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..datasets.splits import exam_id
from ..findings.classification_metrics import findings_metrics
from ..findings.fields import Findings, PredictedFindings
from ..inference.batch import batches
from ..inference.segmenter import Segmentation, Segmenter
from ..metrics import MetricAccumulator

EVAL_BATCH = 16


@dataclass(frozen=True)
class Case:
    """One frame to score: its pixels, its ground-truth mask (of the scored head) and, for nodules, its findings."""

    key: str
    frame: np.ndarray
    mask: np.ndarray  # bool, frame-sized
    spacing_mm: tuple[float, float] | None = None
    findings: Findings | None = None


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
                               "gland_share": result.gland_share})
        if result.findings is not None and case.findings:
            self.findings.append((case.key, result.findings, case.findings))

    def prior_summary(self) -> dict[str, Any] | None:
        """Median/mean coverage of the true nodule by the predicted gland, and its mean share of the ultrasound image."""
        if not self.prior:
            return None
        coverage = np.array([p["coverage"] for p in self.prior])
        return {"n": len(coverage), "coverage_median": float(np.median(coverage)), "coverage_mean": float(coverage.mean()),
                "coverage_p10": float(np.percentile(coverage, 10)),
                "gland_share_mean": float(np.mean([p["gland_share"] for p in self.prior]))}

    def findings_summary(self) -> dict[str, Any] | None:
        """``classification_metrics.findings_metrics`` of the labelled frames (bootstrap grouped by exam)."""
        if not self.findings:
            return None
        return findings_metrics([f for _, _, f in self.findings], [p for _, p, _ in self.findings],
                                groups=[exam_id(key) for key, _, _ in self.findings])

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


def evaluate(segmenter: Segmenter, cases: Iterable[Case], head: str = "nodule", batch: int = EVAL_BATCH) -> Evaluation:
    """Run ``segmenter`` over ``cases`` in batches and score its ``head`` ("nodule" or "gland")."""
    evaluation = Evaluation(head)
    for chunk in batches(cases, batch):
        for case, result in zip(chunk, segmenter.segment([c.frame for c in chunk])):
            evaluation.add(case, result)
    return evaluation
