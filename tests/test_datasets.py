"""Reading datasets: the real shared sets, synthetic TN3K/TG3K/plain folders (the writer: test_dataset_writer.py)."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from thyroid_studio.engine import datasets as D


def _png(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), pixels)
    return path


def _gray(h: int = 12, w: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)


def _square_mask(h: int = 12, w: int = 16, x: int = 3) -> np.ndarray:
    m = np.zeros((h, w), bool)
    m[2:8, x:x + 5] = True
    return m


def _tn3k(root: Path, n: int, folds: int = 5) -> Path:
    for i in range(n):
        _png(root / "trainval-image" / f"{i:04d}.jpg", _gray(seed=i))
        _png(root / "trainval-mask" / f"{i:04d}.jpg", _square_mask().astype(np.uint8) * 255)
    _png(root / "test-image" / "0000.jpg", _gray())
    for k in range(folds):
        fold = {"val": [i for i in range(n) if i % folds == k], "train": [i for i in range(n) if i % folds != k]}
        (root / f"tn3k-trainval-fold{k}.json").write_text(json.dumps(fold))
    return root


def test_real_ddti(shared_data):
    ds = D.open_dataset(shared_data / "ddti")
    assert ds.layout == "pair" and len(ds.samples) == 509
    assert ds.splits() == ["all"]
    assert [s.key for s in ds.samples[:3]] == ["1", "2", "3"]
    assert all(s.mask is not None and s.mask.stem == s.key for s in ds.samples)
    mask = D.read_mask(ds.samples[0].mask)
    assert mask.dtype == bool and mask.any()


def test_real_tg3k(shared_data):
    ds = D.open_dataset(shared_data / "tg3k")
    assert ds.layout == "pair"
    assert ds.splits() == ["all", "train", "val", "test"]
    parts = [ds.split(name) for name in ("train", "val", "test")]
    assert sum(map(len, parts)) == len(ds.samples)
    assert not set(s.key for s in parts[0]) & set(s.key for s in parts[2])


def test_read_mask_thresholds_jpeg_values(tmp_path):
    pixels = np.array([[0, 15, 127, 128, 240, 255]], np.uint8)
    path = _png(tmp_path / "m.png", pixels)
    assert D.read_mask(path).tolist() == [[False, False, False, True, True, True]]
    with pytest.raises(D.DatasetError):
        D.read_mask(_write(tmp_path / "bad.png", b"not an image"))


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_find_mask_conventions(tmp_path):
    img = _png(tmp_path / "a" / "image" / "x.jpg", _gray())
    mask = _png(tmp_path / "a" / "mask" / "x.png", _gray())
    assert D.find_mask(img) == mask
    img = _png(tmp_path / "b" / "trainval-image" / "0001.jpg", _gray())
    mask = _png(tmp_path / "b" / "trainval-mask" / "0001.jpg", _gray())
    assert D.find_mask(img) == mask
    img = _png(tmp_path / "c" / "frame.jpg", _gray())
    assert D.find_mask(img) is None
    mask = _png(tmp_path / "c" / "frame_mask.png", _gray())
    assert D.find_mask(img) == mask


def test_tn3k_non_numeric_names_and_folds(tmp_path):
    root = _tn3k(tmp_path / "tn3k", 6)
    _png(root / "trainval-image" / "zz.png", _gray())
    _png(root / "trainval-image" / "10.jpg", _gray())
    ds = D.open_dataset(root)
    assert ds.layout == "tn3k"
    keys = [s.key for s in ds.split("trainval")]
    assert keys == ["0000", "0001", "0002", "0003", "0004", "0005", "10", "zz"]
    assert ds.split("trainval")[-1].mask is None and ds.split("trainval")[0].mask is not None
    assert [s.key for s in ds.split("fold1-val")] == ["0001"]
    assert len(ds.split("fold0-train")) == 4
    assert "test" in ds.splits() and len(ds.samples) == 9
    with pytest.raises(D.DatasetError, match="no split"):
        ds.split("fold9-val")


def test_tn3k_fold_positions_out_of_range(tmp_path):
    root = _tn3k(tmp_path / "tn3k", 3)
    (root / "tn3k-trainval-fold0.json").write_text(json.dumps({"train": [0, 7], "val": []}))
    with pytest.raises(D.DatasetError, match="positions"):
        D.open_dataset(root).split("fold0-train")


def test_tg3k_layout_int_and_padded_entries(tmp_path):
    root = tmp_path / "tg3k"
    for i in range(4):
        _png(root / "thyroid-image" / f"{i:04d}.jpg", _gray())
        _png(root / "thyroid-mask" / f"{i:04d}.jpg", _gray())
    (root / "tg3k-trainval.json").write_text(json.dumps({"train": [0, "0001", 2], "val": ["3"]}))
    ds = D.open_dataset(root)
    assert ds.layout == "tg3k"
    assert [s.key for s in ds.split("train")] == ["0000", "0001", "0002"]
    assert [s.key for s in ds.split("val")] == ["0003"]
    (root / "tg3k-trainval.json").write_text(json.dumps({"train": [9], "val": []}))
    with pytest.raises(D.DatasetError, match="name no sample"):
        D.open_dataset(root).split("train")


def test_plain_folder_without_masks(tmp_path):
    _png(tmp_path / "b.png", _gray())
    _png(tmp_path / "a.jpg", _gray())
    _png(tmp_path / "a_mask.png", _gray())
    ds = D.open_dataset(tmp_path)
    assert ds.layout == "pair"
    assert [(s.key, s.mask is not None) for s in ds.samples] == [("a", True), ("b", False)]


def test_not_a_dataset(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(D.DatasetError, match="trainval-image.*thyroid-image.*image/"):
        D.open_dataset(tmp_path)


def test_read_mask_of_a_missing_file_is_a_dataset_error(tmp_path):
    with pytest.raises(D.DatasetError, match="cannot read the mask"):
        D.read_mask(tmp_path / "missing.png")
