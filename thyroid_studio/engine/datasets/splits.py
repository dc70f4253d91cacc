"""Exam-grouped, contiguous splits: frames of one exam never straddle training and validation.

DDTI keys ``1``..``480`` are single frames; ``1xxxx`` and ``2xxxx`` are the two
halves of dual-view frame ``xxxx``, so the exam id of a numeric key is
``int(key) % 10000``. Neighbouring ids often come from the same patient, hence
folds are contiguous blocks of sorted exam ids, never a random frame-level split.
Keys that are not numbers (a generic dataset) are their own exam, sorted by name.

A dataset the app writes knows more than its keys: which frames came from one file (a clip, a
multi-frame file) or hold the same pixels (copies of one source image). Its groups
(``index.item_groups``, built with :func:`linked_groups`) replace the exam ids: pass them as
``groups`` and each group stays in one fold and on one side of a held-out split.
"""
from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence

import numpy as np

DUAL_VIEW_MODULUS = 10000
MAX_FOLDS = 1000  # folds of a training or a dataset: more would be one exam each, and a bomb in a crafted file


def exam_id(key: str) -> int | str:
    """The exam a frame belongs to: ``int(key) % 10000`` for numeric keys, else the key itself."""
    return int(key) % DUAL_VIEW_MODULUS if key.isdigit() else key


def _sort_key(value: int | str) -> tuple[int, int | str]:
    return (0, value) if isinstance(value, int) else (1, value)


def _key_order(key: str) -> tuple[int, int | str]:
    return _sort_key(int(key) if key.isdigit() else key)


Groups = Mapping[str, Hashable]  # frame key -> its group (frames of one group never straddle a split)


def linked_groups(links: Mapping[str, Iterable[Hashable]]) -> dict[str, str]:
    """Each key's group: keys that share a link, directly or through other keys, form one group, named by
    its first key in the order of ``links``."""
    parent: dict[str, str] = {key: key for key in links}
    owner: dict[Hashable, str] = {}

    def root(key: str) -> str:
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    order = {key: i for i, key in enumerate(links)}
    for key, values in links.items():
        for value in values:
            other = owner.setdefault(value, key)
            a, b = root(key), root(other)
            if a != b:
                first, second = (a, b) if order[a] < order[b] else (b, a)
                parent[second] = first
    return {key: root(key) for key in links}


def exam_groups(keys: Sequence[str], groups: Groups | None = None) -> list[list[str]]:
    """Frame keys grouped by exam (``groups[key]`` when given, else :func:`exam_id`), frames sorted inside each
    exam; exams in sorted order (given groups: in the order of their first frames)."""
    found: dict[Hashable, list[str]] = {}
    for key in keys:
        found.setdefault(groups[key] if groups is not None else exam_id(key), []).append(key)
    members = {exam: sorted(frames, key=_key_order) for exam, frames in found.items()}
    order = (lambda exam: _key_order(members[exam][0])) if groups is not None else _sort_key
    return [members[exam] for exam in sorted(members, key=order)]


def contiguous_folds(keys: Sequence[str], folds: int = 5, groups: Groups | None = None) -> list[list[str]]:
    """``folds`` lists of frame keys: fold k holds the k-th contiguous block of sorted exams (``groups``: see
    :func:`exam_groups`)."""
    groups = exam_groups(keys, groups)
    if not 2 <= folds <= len(groups):
        raise ValueError(f"cannot make {folds} folds from {len(groups)} exams")
    blocks = np.array_split(np.arange(len(groups)), folds)
    return [[key for g in block for key in groups[g]] for block in blocks]


def fold_split(keys: Sequence[str], fold: int, folds: int = 5,
               groups: Groups | None = None) -> tuple[list[str], list[str]]:
    """(training keys, validation keys) for fold ``fold`` of ``folds`` (``groups``: see :func:`exam_groups`)."""
    if not 0 <= fold < folds:
        raise ValueError(f"fold must be in 0..{folds - 1}, got {fold}")
    parts = contiguous_folds(keys, folds, groups)
    return [k for i, part in enumerate(parts) if i != fold for k in part], parts[fold]


def holdout_split(keys: Sequence[str], fraction: float, groups: Groups | None = None) -> tuple[list[str], list[str]]:
    """(kept keys, held-out keys): the last contiguous block of exams, about ``fraction`` of the frames
    (``groups``: see :func:`exam_groups`).

    At least one exam is held out and at least one kept.
    """
    groups = exam_groups(keys, groups)
    if len(groups) < 2:
        raise ValueError(f"need at least 2 exams to hold some out, got {len(groups)}")
    target, count, best = fraction * len(keys), 0, (float("inf"), 1)
    for held in range(1, len(groups)):  # the last ``held`` exams: the count of frames nearest the target
        count += len(groups[-held])
        best = min(best, (abs(count - target), held))
        if count >= target:
            break
    held = best[1]
    return [k for g in groups[:-held] for k in g], [k for g in groups[-held:] for k in g]
