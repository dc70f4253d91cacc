"""Tiny dataset files for the dataset tests (tests/test_layouts.py, tests/test_writer.py): gray frames, a
square mask, a TN3K copy laid out as published; and image/ + mask/ pairs of speckled frames with one dark
nodule each, for training, fine-tuning and the command line; and the simulated crashes of the writer tests."""
from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np


def write_png(path: Path, pixels: np.ndarray) -> Path:
    """Write ``pixels`` with OpenCV (the format follows the suffix), making the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), pixels)
    return path


def gray(h: int = 12, w: int = 16, seed: int = 0) -> np.ndarray:
    """Random uint8 pixels: a frame of its own for each seed."""
    return np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)


def square_mask(h: int = 12, w: int = 16, x: int = 3) -> np.ndarray:
    """A 6 x 5 nodule at rows 2-7, columns x to x + 4."""
    m = np.zeros((h, w), bool)
    m[2:8, x:x + 5] = True
    return m


def tn3k_copy(root: Path, n: int, folds: int = 5, mask_suffix: str = ".jpg") -> Path:
    """A TN3K copy as published: JPEG images and (lossy) masks, fold k's val = positions i with i % folds == k."""
    for i in range(n):
        write_png(root / "trainval-image" / f"{i:04d}.jpg", gray(seed=i))
        write_png(root / "trainval-mask" / f"{i:04d}{mask_suffix}", square_mask().astype(np.uint8) * 255)
    write_png(root / "test-image" / "0000.jpg", gray())
    write_png(root / "test-mask" / "0000.png", square_mask().astype(np.uint8) * 255)
    for k in range(folds):
        fold = {"train": [i for i in range(n) if i % folds != k], "val": [i for i in range(n) if i % folds == k]}
        (root / f"tn3k-trainval-fold{k}.json").write_text(json.dumps(fold))
    return root


def write_nodule_pairs(root: Path, keys: list[str], seed: int, shape=(72, 88)) -> Path:
    """An image/ + mask/ dataset of speckled frames with one dark elliptic 'nodule' each."""
    rng = np.random.default_rng(seed)
    (root / "image").mkdir(parents=True)
    (root / "mask").mkdir()
    for key in keys:
        h, w = shape
        image = np.clip(rng.normal(120, 30, shape), 0, 255).astype(np.uint8)
        mask = np.zeros(shape, np.uint8)
        centre = (int(rng.integers(25, w - 25)), int(rng.integers(20, h - 20)))
        cv2.ellipse(mask, centre, (int(rng.integers(8, 16)), int(rng.integers(6, 12))), 0, 0, 360, 255, -1)
        image[mask > 0] //= 3
        cv2.imwrite(str(root / "image" / f"{key}.png"), image)
        cv2.imwrite(str(root / "mask" / f"{key}.png"), mask)
    return root


# ------------------------------------------------------------------ crashes


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so the writer's own clean-up does not run."""


def failing_at(monkeypatch, step: int | None, error: type[BaseException]) -> dict:
    """Make the ``step``-th call of os.replace / os.fsync raise ``error`` (fsync itself skipped: speed)."""
    calls = {"n": 0}
    real_replace = os.replace

    def counted(real):
        def call(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == step:
                raise error(f"simulated failure at step {step}")
            return real(*args, **kwargs) if real else None
        return call

    monkeypatch.setattr(os, "replace", counted(real_replace))
    monkeypatch.setattr(os, "fsync", counted(None))
    return calls
