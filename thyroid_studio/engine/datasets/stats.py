"""What a dataset holds: items per split, folds, how much of each frame the masks cover, findings counts."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..findings.fields import FIELDS, LABELS_FILE, LabelsError, read_labels
from .layouts import DatasetError, open_dataset, read_mask

AREA_PERCENTILES = (0, 5, 25, 50, 75, 95, 100)


@dataclass
class DatasetStats:
    root: Path
    layout: str
    items: int
    splits: dict[str, int | str]  # split -> items, or why it cannot be read
    masks: int  # items with a mask
    empty_masks: int
    area_percentiles: dict[int, float]  # percentile -> fraction of the frame the mask covers
    labelled: int = 0  # items with at least one finding
    findings: dict[str, Counter] = field(default_factory=dict)  # field -> class -> items
    labels_error: str | None = None


def dataset_stats(root: str | Path) -> DatasetStats:
    """Count a dataset of any layout :func:`datasets.open_dataset` reads; DatasetError if it is none."""
    dataset = open_dataset(root)
    splits: dict[str, int | str] = {}
    for name in dataset.splits():
        try:
            splits[name] = len(dataset.split(name))
        except DatasetError as exc:
            splits[name] = str(exc)
    areas = []
    for sample in dataset.samples:
        if sample.mask is not None:
            try:
                areas.append(float(read_mask(sample.mask).mean()))
            except DatasetError:
                continue
    percentiles = dict(zip(AREA_PERCENTILES, np.percentile(areas, AREA_PERCENTILES).tolist())) if areas else {}
    stats = DatasetStats(dataset.root, dataset.layout, len(dataset.samples), splits, len(areas),
                         sum(a == 0 for a in areas), percentiles)
    path = dataset.root / LABELS_FILE
    if path.is_file():
        try:
            labels = read_labels(path)
        except LabelsError as exc:
            stats.labels_error = str(exc)
        else:
            stats.labelled = sum(1 for findings in labels.values() if findings)
            stats.findings = {name: Counter(f.get(name) for f in labels.values() if f.get(name)) for name in FIELDS}
    return stats
