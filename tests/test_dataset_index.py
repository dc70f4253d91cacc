"""Who a saved frame is (issue 18, items 3 and 5): its file and frame index first, its pixels only for a file
renamed or moved since; two files with the same pixels are two items (DDTI's 1/2 pair); and the groups that
stay in one fold and on one side of a held-out split (the frames of one file, copies of one image)."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from thyroid_studio.engine.datasets import layouts as D
from thyroid_studio.engine.datasets.check import check
from thyroid_studio.engine.datasets.index import CONTENT, FILE, RECORD, DatasetIndex, dataset_groups, item_folds
from thyroid_studio.engine.datasets.layouts import read_mask
from thyroid_studio.engine.datasets.splits import holdout_split, linked_groups
from thyroid_studio.engine.datasets.writer import AlreadySaved, DatasetWriter
from thyroid_studio.engine.io.frames import read_frame

from dataset_files import gray, square_mask, write_png


def ddti_pair(shared_data: Path) -> tuple[Path, Path]:
    """DDTI 1 and 2: the very same image, each with its own nodule mask."""
    first, second = (shared_data / "ddti" / "image" / f"{n}.png" for n in (1, 2))
    assert np.array_equal(read_frame(first).pixels, read_frame(second).pixels)
    return first, second


def truth(image: Path) -> np.ndarray:
    return read_mask(image.parent.parent / "mask" / image.name)


def test_two_files_with_the_same_pixels_are_two_items(shared_data, tmp_path):
    first, second = ddti_pair(shared_data)
    writer = DatasetWriter(tmp_path / "d")
    one = writer.add(first, truth(first), source=first)
    two = writer.add(second, truth(second), source=second)  # today: AlreadySaved "as 0000", 2's nodule lost
    assert (one.key, two.key) == ("0000", "0001")
    assert [int(read_mask(s.mask).sum()) for s in (one, two)] == [int(truth(first).sum()), int(truth(second).sum())]
    assert int(truth(first).sum()) != int(truth(second).sum())
    index = DatasetIndex(tmp_path / "d")
    pixels = read_frame(second).pixels
    assert index.find(pixels, source=second) == index.find(pixels, source=second, frame_index=0)
    assert (index.find(pixels, source=second).item.key, index.find(pixels, source=second).matched_by) == ("0001", FILE)
    assert index.find(pixels, source=first).item.key == "0000"
    with pytest.raises(AlreadySaved) as again:
        writer.add(second, truth(first), source=second)
    assert again.value.key == "0001" and again.value.matched_by == FILE and not again.value.same_mask
    assert check(tmp_path / "d") == []  # the same pixels twice, from two files, is no problem


def test_the_same_file_spelt_another_way_is_the_same_item(tmp_path, monkeypatch):
    frames = tmp_path / "frames"
    src = write_png(frames / "a.png", gray(seed=1))
    link = tmp_path / "link"
    link.symlink_to(frames)
    writer = DatasetWriter(tmp_path / "d")
    writer.add(src, square_mask(), source=src)
    monkeypatch.chdir(tmp_path)
    for spelling in (link / "a.png", Path("frames/a.png"), Path("link/../frames/a.png")):
        with pytest.raises(AlreadySaved) as same:
            writer.add(spelling, square_mask(), source=spelling)
        assert same.value.key == "0000" and same.value.matched_by == FILE and same.value.same_mask
    assert len(writer.index.items) == 1


def test_a_renamed_file_is_found_by_its_pixels_and_says_so(tmp_path):
    frames = tmp_path / "frames"
    src = write_png(frames / "a.png", gray(seed=1))
    writer = DatasetWriter(tmp_path / "d")
    writer.add(src, square_mask(), source=src)
    renamed = src.rename(frames / "b.png")
    pixels = read_frame(renamed).pixels
    match = DatasetIndex(tmp_path / "d").find(pixels, source=renamed)
    assert match.item.key == "0000" and match.matched_by == CONTENT
    with pytest.raises(AlreadySaved) as saved:
        writer.add(renamed, square_mask(x=6), source=renamed)
    assert saved.value.matched_by == CONTENT and "which is not there any more" in str(saved.value)
    writer.add(renamed, square_mask(x=6), source=renamed, replace=True)  # the record now names the new file
    assert DatasetIndex(tmp_path / "d").find(pixels, source=renamed).matched_by == FILE
    copy = shutil.copy(renamed, frames / "c.png")  # another file with the same pixels, the first still there
    assert DatasetIndex(tmp_path / "d").find(pixels, source=copy) is None
    assert writer.add(copy, square_mask(), source=copy).key == "0001"


def test_a_moved_folder_finds_each_of_two_files_with_the_same_pixels(tmp_path):
    old = tmp_path / "old"
    for name, x in (("1", 1), ("2", 9)):
        write_png(old / f"{name}.png", gray(seed=1))
    writer = DatasetWriter(tmp_path / "d")
    for name, x in (("1", 1), ("2", 9)):
        writer.add(old / f"{name}.png", square_mask(x=x), source=old / f"{name}.png")
    new = shutil.move(old, tmp_path / "new")
    index = DatasetIndex(tmp_path / "d")
    found = {name: index.find(gray(seed=1), source=Path(new) / f"{name}.png") for name in ("1", "2")}
    assert {name: (m.item.key, m.matched_by) for name, m in found.items()} == {"1": ("0000", CONTENT),
                                                                                "2": ("0001", CONTENT)}


def test_a_changed_file_is_found_by_its_record_and_saved_as_a_new_item(tmp_path):
    src = write_png(tmp_path / "a.png", gray(seed=1))
    writer = DatasetWriter(tmp_path / "d")
    writer.add(src, square_mask(), source=src)
    write_png(src, gray(seed=2))
    assert DatasetIndex(tmp_path / "d").find(gray(seed=2), source=src).matched_by == RECORD
    assert writer.add(src, square_mask(), source=src, replace=True).key == "0001"  # never the old image's mask
    assert DatasetIndex(tmp_path / "d").find(gray(seed=2), source=src).item.key == "0001"


# ----------------------------------------------------------------------------- groups and folds


def _val_folds(root: Path) -> dict[str, int]:
    keys = [s.key for s in D.open_dataset(root).split("trainval")]
    return {keys[p]: k for k in range(5) for p in json.loads((root / f"tn3k-trainval-fold{k}.json").read_text())["val"]}


def test_frames_of_one_clip_and_copies_of_one_image_share_a_fold(tmp_path):
    root = tmp_path / "d"
    writer = DatasetWriter(root)
    (tmp_path / "clip.dcm").write_bytes(b"")  # there: its frame 0 exported below is a copy, not the clip renamed
    clip = [writer.add(gray(seed=10 + i), square_mask(), source=tmp_path / "clip.dcm", frame_index=i).key
            for i in range(5)]
    still = write_png(tmp_path / "still.png", gray(seed=10))  # the clip's frame 0, exported as an image
    copy = writer.add(still, square_mask(), source=still).key
    singles = [writer.add(gray(seed=50 + i), square_mask(), source=tmp_path / f"s{i}.png").key for i in range(4)]
    folds = _val_folds(root)
    assert len({folds[k] for k in clip}) == 1  # today: 0, 1, 2, 3, 4 (one clip in every fold)
    assert folds[copy] == folds[clip[0]]
    assert sorted(folds[k] for k in singles) == [1, 2, 3, 4]  # the others go round the folds not taken
    assert check(root) == []
    groups = dataset_groups(root)
    assert len({groups[k] for k in clip + [copy]}) == 1 and len({groups[k] for k in singles}) == 4


def test_ddti_dual_view_halves_of_one_folder_share_a_fold(tmp_path):
    writer = DatasetWriter(tmp_path / "d")
    keys = {name: writer.add(gray(seed=i), square_mask(), source=tmp_path / "ddti" / f"{name}.png").key
            for i, name in enumerate(("10007", "3", "20007", "20230107"))}
    groups = dataset_groups(tmp_path / "d")
    assert groups[keys["10007"]] == groups[keys["20007"]]
    assert len({groups[keys[n]] for n in ("10007", "3", "20230107")}) == 3


def test_a_dataset_whose_records_spread_a_clip_gets_fold_files_that_keep_it_together(tmp_path):
    """A dataset written before the groups (each frame of a clip in its own fold): the fold files follow the group."""
    root = tmp_path / "d"
    writer = DatasetWriter(root)
    for i in range(3):
        writer.add(gray(seed=i), square_mask(), source=tmp_path / "clip.dcm", frame_index=i)
    records = root / "records.jsonl"
    lines = [json.loads(line) for line in records.read_text().splitlines()]
    for fold, line in enumerate(lines[1:]):
        line["fold"] = fold  # as the writer of today assigns them, and its fold files
        (root / f"tn3k-trainval-fold{fold}.json").write_text(json.dumps(
            {"train": [p for p in range(3) if p != fold], "val": [fold]}))
    records.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert set(item_folds(DatasetIndex(root).items).values()) == {0}
    assert any("differs from the folds of the records" in p for p in check(root))
    DatasetWriter(root)  # a writer opening it rewrites the derived files
    assert set(_val_folds(root).values()) == {0} and check(root) == []


def test_a_held_out_split_keeps_each_group_on_one_side():
    keys = [f"{i:04d}" for i in range(12)]
    groups = linked_groups({key: [("file", "clip" if 3 <= int(key) <= 10 else key)] for key in keys})
    kept, held = holdout_split(keys, 0.25, groups)
    assert set(keys[3:11]) <= set(kept) or set(keys[3:11]) <= set(held)
    plain_kept, plain_held = holdout_split(keys, 0.25)
    assert set(keys[3:11]) & set(plain_kept) and set(keys[3:11]) & set(plain_held)  # what a keys-only split does


def test_linked_groups_join_through_shared_links():
    groups = linked_groups({"a": ["x"], "b": ["y"], "c": ["x", "y"], "d": ["z"]})
    assert groups == {"a": "a", "b": "a", "c": "a", "d": "d"}


def test_an_unknown_origin_is_found_by_pixels(tmp_path):
    """Items converted from a TN3K copy have no record of their source: a frame with their pixels is theirs."""
    root = tmp_path / "tn3k"
    write_png(root / "trainval-image" / "0000.png", gray(seed=3))
    write_png(root / "trainval-mask" / "0000.png", square_mask().astype(np.uint8) * 255)
    writer = DatasetWriter(root)
    assert writer.index.items["0000"].source is None
    match = writer.index.find(gray(seed=3), source=tmp_path / "anywhere.png")
    assert match.item.key == "0000" and match.matched_by == CONTENT
    assert os.path.exists(tmp_path / "anywhere.png") is False
