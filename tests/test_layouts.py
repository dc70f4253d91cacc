"""Reading datasets: the real shared sets, synthetic TN3K/TG3K/plain folders (the writer: test_writer.py)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from thyroid_studio.engine.datasets import layouts as D

from dataset_files import gray, tn3k_copy, write_png


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
    path = write_png(tmp_path / "m.png", pixels)
    assert D.read_mask(path).tolist() == [[False, False, False, True, True, True]]
    with pytest.raises(D.DatasetError):
        D.read_mask(_write(tmp_path / "bad.png", b"not an image"))


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_find_mask_conventions(tmp_path):
    img = write_png(tmp_path / "a" / "image" / "x.jpg", gray())
    mask = write_png(tmp_path / "a" / "mask" / "x.png", gray())
    assert D.find_mask(img) == mask
    img = write_png(tmp_path / "b" / "trainval-image" / "0001.jpg", gray())
    mask = write_png(tmp_path / "b" / "trainval-mask" / "0001.jpg", gray())
    assert D.find_mask(img) == mask
    img = write_png(tmp_path / "c" / "frame.jpg", gray())
    assert D.find_mask(img) is None
    mask = write_png(tmp_path / "c" / "frame_mask.png", gray())
    assert D.find_mask(img) == mask


def test_tn3k_non_numeric_names_and_folds(tmp_path):
    root = tn3k_copy(tmp_path / "tn3k", 6)
    write_png(root / "trainval-image" / "zz.png", gray())
    write_png(root / "trainval-image" / "10.jpg", gray())
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
    root = tn3k_copy(tmp_path / "tn3k", 3)
    (root / "tn3k-trainval-fold0.json").write_text(json.dumps({"train": [0, 7], "val": []}))
    with pytest.raises(D.DatasetError, match="positions"):
        D.open_dataset(root).split("fold0-train")


def test_tg3k_layout_int_and_padded_entries(tmp_path):
    root = tmp_path / "tg3k"
    for i in range(4):
        write_png(root / "thyroid-image" / f"{i:04d}.jpg", gray())
        write_png(root / "thyroid-mask" / f"{i:04d}.jpg", gray())
    (root / "tg3k-trainval.json").write_text(json.dumps({"train": [0, "0001", 2], "val": ["3"]}))
    ds = D.open_dataset(root)
    assert ds.layout == "tg3k"
    assert [s.key for s in ds.split("train")] == ["0000", "0001", "0002"]
    assert [s.key for s in ds.split("val")] == ["0003"]
    (root / "tg3k-trainval.json").write_text(json.dumps({"train": [9], "val": []}))
    with pytest.raises(D.DatasetError, match="name no sample"):
        D.open_dataset(root).split("train")


def test_plain_folder_without_masks(tmp_path):
    write_png(tmp_path / "b.png", gray())
    write_png(tmp_path / "a.jpg", gray())
    write_png(tmp_path / "a_mask.png", gray())
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
