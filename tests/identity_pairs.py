"""Image/mask pairs whose pixels say which pair they are, to count lost, mispaired and doubled items after
concurrent or interrupted writes (tests/test_cli_dataset.py, bench/dataset_battery.py)."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from thyroid_studio.engine.datasets.layouts import open_dataset, read_mask

SIZE = 64
BITS = 8  # ids 0..255


def write_pairs(folder: Path, ids: Iterable[int]) -> Path:
    """``folder/image/<id>.png`` (noise, id in its top-left corner) and ``folder/mask/<id>.png`` (id in binary blocks)."""
    for name in ("image", "mask"):
        (folder / name).mkdir(parents=True, exist_ok=True)
    for i in ids:
        image = np.random.default_rng(i).integers(20, 236, (SIZE, SIZE), dtype=np.uint8)
        image[:4, :4] = i
        mask = np.zeros((SIZE, SIZE), np.uint8)
        mask[40:56, 20:44] = 255  # never empty
        for bit in range(BITS):
            if i >> bit & 1:
                mask[8:14, 4 + 7 * bit:10 + 7 * bit] = 255
        assert cv2.imwrite(str(folder / "image" / f"{i}.png"), image)
        assert cv2.imwrite(str(folder / "mask" / f"{i}.png"), mask)
    return folder


def image_id(path: Path) -> int:
    return int(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)[1, 1])


def mask_id(path: Path) -> int:
    mask = read_mask(path)
    return sum(1 << bit for bit in range(BITS) if mask[8:14, 4 + 7 * bit:10 + 7 * bit].mean() > 0.5)


@dataclass
class Tally:
    items: int
    lost: int  # expected ids with no item
    mispaired: int  # items whose mask is another pair's (or missing)
    twice: int  # items beyond the first for one id


def tally(dataset: Path, expected: Iterable[int]) -> Tally:
    samples = open_dataset(dataset).split("trainval")
    ids = [image_id(s.image) for s in samples]
    mispaired = sum(s.mask is None or mask_id(s.mask) != i for s, i in zip(samples, ids))
    return Tally(len(samples), len(set(expected) - set(ids)), mispaired, len(ids) - len(set(ids)))
