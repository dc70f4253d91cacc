"""Exam-grouped contiguous splits: no exam in two folds; DDTI dual-view halves stay together."""
from __future__ import annotations

import pytest

from thyroid_studio.engine.datasets.splits import contiguous_folds, exam_id, fold_split, holdout_split

DDTI_LIKE = [str(i) for i in range(1, 41)] + ["10007", "20007", "10033", "20033", "10041", "20041"]


def test_exam_id_joins_dual_view_halves():
    assert exam_id("10007") == exam_id("20007") == exam_id("7") == 7
    assert exam_id("case_a") == "case_a"


@pytest.mark.parametrize("folds", [2, 3, 5])
def test_folds_partition_exams_in_contiguous_blocks(folds):
    parts = contiguous_folds(DDTI_LIKE, folds)
    assert sorted(k for p in parts for k in p) == sorted(DDTI_LIKE)
    exams = [{exam_id(k) for k in part} for part in parts]
    for i in range(folds):
        for j in range(i + 1, folds):
            assert not exams[i] & exams[j], "an exam is in two folds"
            assert max(exams[i]) < min(exams[j]), "folds are not contiguous blocks of sorted exams"


def test_dual_view_halves_in_the_same_fold():
    for part in contiguous_folds(DDTI_LIKE, 5):
        for key in part:
            if len(key) == 5:
                partner = ("2" if key[0] == "1" else "1") + key[1:]
                assert partner in part


def test_fold_split_is_train_plus_validation():
    train, val = fold_split(DDTI_LIKE, 0, 5)
    assert set(train).isdisjoint(val) and sorted(train + val) == sorted(DDTI_LIKE)
    assert "1" in val and "20007" in val  # fold 0 is the first block: exams 1..8
    with pytest.raises(ValueError):
        fold_split(DDTI_LIKE, 5, 5)


def test_generic_keys_are_sorted_contiguous_blocks():
    keys = [f"case_{c}" for c in "fbdaec"]
    assert contiguous_folds(keys, 3) == [["case_a", "case_b"], ["case_c", "case_d"], ["case_e", "case_f"]]


def test_holdout_is_the_last_block_of_exams():
    kept, held = holdout_split([str(i) for i in range(20)], 0.25)
    assert held == [str(i) for i in range(15, 20)] and len(kept) == 15
    kept, held = holdout_split(["1", "2"], 0.01)
    assert kept == ["1"] and held == ["2"]
