"""Exam-grouped, contiguous splits: frames of one exam never straddle training and validation.

DDTI keys ``1``..``480`` are single frames; ``1xxxx`` and ``2xxxx`` are the two
halves of dual-view frame ``xxxx``, so the exam id of a numeric key is
``int(key) % 10000``. Neighbouring ids often come from the same patient, hence
folds are contiguous blocks of sorted exam ids, never a random frame-level split.
Keys that are not numbers (a generic dataset) are their own exam, sorted by name.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DUAL_VIEW_MODULUS = 10000
MAX_FOLDS = 1000  # folds of a training or a dataset: more would be one exam each, and a bomb in a crafted file


def exam_id(key: str) -> int | str:
    """The exam a frame belongs to: ``int(key) % 10000`` for numeric keys, else the key itself."""
    return int(key) % DUAL_VIEW_MODULUS if key.isdigit() else key


def _sort_key(value: int | str) -> tuple[int, int | str]:
    return (0, value) if isinstance(value, int) else (1, value)


def exam_groups(keys: Sequence[str]) -> list[list[str]]:
    """Frame keys grouped by exam, exams in sorted order, frames sorted inside each exam."""
    groups: dict[int | str, list[str]] = {}
    for key in keys:
        groups.setdefault(exam_id(key), []).append(key)
    ordered = sorted(groups, key=_sort_key)
    return [sorted(groups[e], key=lambda k: _sort_key(int(k) if k.isdigit() else k)) for e in ordered]


def contiguous_folds(keys: Sequence[str], folds: int = 5) -> list[list[str]]:
    """``folds`` lists of frame keys: fold k holds the k-th contiguous block of sorted exams."""
    groups = exam_groups(keys)
    if not 2 <= folds <= len(groups):
        raise ValueError(f"cannot make {folds} folds from {len(groups)} exams")
    blocks = np.array_split(np.arange(len(groups)), folds)
    return [[key for g in block for key in groups[g]] for block in blocks]


def fold_split(keys: Sequence[str], fold: int, folds: int = 5) -> tuple[list[str], list[str]]:
    """(training keys, validation keys) for fold ``fold`` of ``folds``."""
    if not 0 <= fold < folds:
        raise ValueError(f"fold must be in 0..{folds - 1}, got {fold}")
    parts = contiguous_folds(keys, folds)
    return [k for i, part in enumerate(parts) if i != fold for k in part], parts[fold]


def holdout_split(keys: Sequence[str], fraction: float) -> tuple[list[str], list[str]]:
    """(kept keys, held-out keys): the last contiguous block of exams, about ``fraction`` of the frames.

    At least one exam is held out and at least one kept.
    """
    groups = exam_groups(keys)
    if len(groups) < 2:
        raise ValueError(f"need at least 2 exams to hold some out, got {len(groups)}")
    held = min(len(groups) - 1, max(1, round(fraction * len(groups))))
    return [k for g in groups[:-held] for k in g], [k for g in groups[-held:] for k in g]
