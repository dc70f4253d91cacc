"""Classification metrics on hand-computed cases; the figure is a real PNG written atomically."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from thyroid_studio.engine.findings.classification_metrics import (accuracy, balanced_accuracy, bootstrap_interval,
                                                                   confusion_matrix, findings_metrics,
                                                                   format_findings_table, majority_accuracy,
                                                                   per_class_accuracy, reliability, roc_auc, top_label,
                                                                   write_figure)
from thyroid_studio.engine.findings.fields import FIELDS, Findings, PredictedFindings


def test_auc_counts_ordered_pairs_and_ties_as_half():
    # Positives 0.35 and 0.8 against negatives 0.1 and 0.4: 3 of 4 pairs ordered.
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    assert roc_auc([0, 1], [0.5, 0.5]) == 0.5
    assert roc_auc([0, 1, 1], [0.2, 0.2, 0.9]) == 0.75  # one tie (1/2) + one win
    assert roc_auc([1, 0], [0.9, 0.1]) == 1.0 and roc_auc([1, 0], [0.1, 0.9]) == 0.0
    assert math.isnan(roc_auc([1, 1], [0.1, 0.2]))


def test_unknown_labels_are_left_out():
    known = np.array([True, True, True, False])
    assert roc_auc([0, 1, 1, 0], [0.1, 0.9, 0.8, 0.95], known=known) == 1.0
    assert accuracy([0, 1, 1, 0], [0, 1, 1, 1], known=known) == 1.0
    with pytest.raises(ValueError):
        roc_auc([0, 1], [0.1, 0.2, 0.3])


def test_bootstrap_is_reproducible_and_brackets_the_value():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 80)
    s = y * 0.5 + rng.random(80)
    a = bootstrap_interval(y, s, resamples=300)
    b = bootstrap_interval(y, s, resamples=300)
    assert a == b and a.low <= a.value <= a.high and a.resamples == 300
    assert a.value == roc_auc(y, s) and a.high - a.low > 0.02


def test_grouped_bootstrap_resamples_whole_groups():
    y, s = [0, 1, 0, 1], [0.1, 0.9, 0.8, 0.2]
    one_exam = bootstrap_interval(y, s, groups=["e"] * 4, resamples=50)
    assert one_exam.low == one_exam.high == one_exam.value == 0.75  # every resample is the whole set (3 of 4 pairs)
    # Two exams each holding one class: every resample that has both classes is the full AUC, others are dropped.
    split = bootstrap_interval([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], groups=[1, 1, 2, 2], resamples=200)
    assert split.low == split.high == 1.0 and 0 < split.resamples < 200


def test_confusion_and_accuracies_by_hand():
    truth, pred = [0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0]
    matrix = confusion_matrix(truth, pred, 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert per_class_accuracy(matrix) == pytest.approx([1 / 2, 1, 2 / 3])
    assert balanced_accuracy(matrix) == pytest.approx((1 / 2 + 1 + 2 / 3) / 3)
    assert accuracy(truth, pred) == pytest.approx(4 / 6)
    assert majority_accuracy(matrix) == pytest.approx(3 / 6)
    with pytest.raises(ValueError):
        confusion_matrix([0, 3], [0, 0], 3)


def test_a_class_absent_from_the_truth_does_not_count_in_balanced_accuracy():
    matrix = confusion_matrix([0, 0, 1], [0, 2, 1], 3)
    assert np.isnan(per_class_accuracy(matrix)[2])
    assert balanced_accuracy(matrix) == pytest.approx((1 / 2 + 1) / 2)


def test_reliability_bins_and_ece_by_hand():
    bins = reliability([0, 0, 1, 1, 1], [0.05, 0.15, 0.12, 0.95, 1.0])
    assert bins.counts[[0, 1, 9]].tolist() == [1, 2, 2] and bins.counts.sum() == 5
    assert bins.confidence[[0, 1, 9]] == pytest.approx([0.05, 0.135, 0.975])
    assert bins.frequency[[0, 1, 9]] == pytest.approx([0.0, 0.5, 1.0])
    assert np.isnan(bins.frequency[5])
    assert bins.ece == pytest.approx((1 * 0.05 + 2 * 0.365 + 2 * 0.025) / 5)
    assert reliability([1, 0], [0.7, 0.3], bins=2).ece == pytest.approx(0.3)


def test_top_label():
    correct, confidence = top_label([0, 2], [[0.6, 0.3, 0.1], [0.5, 0.1, 0.4]])
    assert correct.tolist() == [True, False] and confidence.tolist() == [0.6, 0.5]


def predicted(p_suspicious: float, **best: str) -> PredictedFindings:
    """P(suspicious) and, per field, 0.7 on the named class and the rest spread evenly."""
    probs = {}
    for name, classes in FIELDS.items():
        choice = best.get(name, classes[0])
        probs[name] = {c: 0.7 if c == choice else 0.3 / (len(classes) - 1) for c in classes}
    return PredictedFindings(p_suspicious, probs)


def test_findings_metrics():
    truths = [Findings({"tirads": "2", "margins": "well-defined"}), Findings({"tirads": "4a", "margins": "spiculated"}),
              Findings({"tirads": "5"}), Findings({})]
    preds = [predicted(0.2, tirads="2", margins="well-defined"), predicted(0.6, tirads="4b", margins="well-defined"),
             predicted(0.9, tirads="5"), predicted(0.99)]
    metrics = findings_metrics(truths, preds, groups=[1, 2, 3, 4])
    sus = metrics["suspicious"]
    assert (sus["n"], sus["positives"], sus["auc"], sus["accuracy"]) == (3, 2, 1.0, 1.0)
    assert sus["confusion"] == [[1, 0], [0, 2]] and sus["grouped"]
    assert metrics["tirads"]["accuracy"] == pytest.approx(2 / 3)
    margins = metrics["margins"]
    assert margins["n"] == 2 and margins["accuracy"] == 0.5 and margins["confusion"][4][0] == 1
    assert margins["ece"] == pytest.approx(abs(0.5 - 0.7))  # both top labels at 0.7, one right
    assert set(metrics) == {"suspicious", "tirads", "margins"}  # fields with no known label are left out
    table = format_findings_table(metrics)
    assert table.splitlines()[0].split()[:2] == ["finding", "n"] and "1.000 [" in table


def test_write_figure(tmp_path):
    matrix = confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2], 3)
    path = write_figure(tmp_path / "fig.png", matrix, ["a", "b", "c"], reliability([0, 1, 1, 0], [0.1, 0.8, 0.6, 0.4]),
                        title="margins")
    image = cv2.imread(str(path))
    assert image is not None and image.shape[1] > 600 and image.std() > 10
    assert [p.name for p in tmp_path.iterdir()] == ["fig.png"]
