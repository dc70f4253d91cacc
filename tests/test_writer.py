"""The dataset writer: appends, duplicates, replace with history, findings, lookup, and crashes at every step."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from thyroid_studio.engine.datasets import layouts as D
from thyroid_studio.engine.datasets.check import check, repair
from thyroid_studio.engine.datasets.index import DatasetIndex, content_hash
from thyroid_studio.engine.datasets.writer import JOURNAL, DatasetWriter
from thyroid_studio.engine.findings.fields import Findings, read_labels
from thyroid_studio.engine.preprocessing import Box

from dataset_files import Crash, failing_at, gray, square_mask, tn3k_copy, write_png


def _folds(root: Path, k: int) -> dict:
    return json.loads((root / f"tn3k-trainval-fold{k}.json").read_text())


def _listing(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------ adding


def test_appends_to_a_tn3k_copy_keeping_positions_and_folds(tmp_path):
    root = tn3k_copy(tmp_path / "tn3k", 7)
    before = D.open_dataset(root)
    old_folds = [_folds(root, k) for k in range(5)]
    writer = DatasetWriter(root)
    assert writer.folds == 5 and len(writer.index.items) == 7  # the copy's items adopted, with their folds
    assert [_folds(root, k) for k in range(5)] == old_folds
    src = write_png(tmp_path / "src" / "frame.jpg", gray(seed=9))
    first = writer.add(src, square_mask(), source=src, record={"model": "trfe-a", "dice_ai_vs_label": 0.8})
    second = writer.add(gray(seed=3, h=12), square_mask(x=6), source="video.mp4", frame_index=4)
    assert (first.key, second.key) == ("0007", "0008")
    assert first.image.suffix == ".jpg" and second.image.suffix == ".png"
    assert first.image.read_bytes() == src.read_bytes()

    after = D.open_dataset(root)
    trainval = after.split("trainval")
    assert trainval[:7] == before.split("trainval")
    assert [s.key for s in trainval[7:]] == ["0007", "0008"] and trainval[7].mask == first.mask
    for k in range(5):
        new = _folds(root, k)
        assert new["val"][: len(old_folds[k]["val"])] == old_folds[k]["val"]
        assert (7 in new["val"]) == (k == 2) and (8 in new["val"]) == (k == 3)
        assert sorted(new["val"] + new["train"]) == list(range(9))
    assert [s.key for s in after.split("fold2-val")] == ["0002", "0007"]
    for sample in (first, second):
        assert set(np.unique(cv2.imread(str(sample.mask), cv2.IMREAD_UNCHANGED))) == {0, 255}
    recs = writer.records()
    assert [r["key"] for r in recs] == ["0007", "0008"]
    assert recs[0]["model"] == "trfe-a" and recs[0]["source"] == str(src) and "saved_at" in recs[0]
    assert recs[1]["frame_index"] == 4 and recs[1]["mask"] == "trainval-mask/0008.png"
    assert sorted(p.name for p in root.rglob(".*")) == [".dataset.lock"]  # no temporary file, no journal

    jpeg_masks = [f"trainval-mask/{i:04d}.jpg" for i in range(7)]
    assert [p.split(":")[0] for p in check(root)] == jpeg_masks  # lossy: not only 0 and 255
    truth = [D.read_mask(s.mask) for s in trainval[:7]]
    fixed, left = repair(root)
    assert len(fixed) == 7 and left == []
    assert [D.read_mask(s.mask).tolist() for s in D.open_dataset(root).split("trainval")[:7]] == [
        t.tolist() for t in truth]  # training reads the same masks
    assert sorted(p.name for p in (root / "history").iterdir()) == [f"{i:04d}.r1.jpg" for i in range(7)]


def test_creates_a_layout_with_the_folds_asked_for(tmp_path):
    root = tmp_path / "new"
    writer = DatasetWriter(root, folds=3)
    assert [_folds(root, k) for k in range(3)] == [{"train": [], "val": []}] * 3
    writer.add(gray(), square_mask(), source="scan.dcm", frame_index=2)
    assert [_folds(root, k) for k in range(3)] == [{"train": [], "val": [0]}, {"train": [0], "val": []},
                                                    {"train": [0], "val": []}]
    assert DatasetWriter(root).folds == 3
    with pytest.raises(D.DatasetError, match="3 folds"):
        DatasetWriter(root, folds=5)


def test_rejects_bad_input_and_leaves_nothing(tmp_path):
    writer = DatasetWriter(tmp_path / "w")
    before = _listing(tmp_path / "w")
    with pytest.raises(ValueError, match="shape"):
        writer.add(gray(), np.zeros((3, 3), bool), source="a")
    with pytest.raises(ValueError, match="reserved"):
        writer.add(gray(), square_mask(), source="a", record={"key": "x"})
    with pytest.raises(ValueError, match="spacing"):
        writer.add(gray(), square_mask(), source="a", spacing_mm=(0.1, -1))
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not a png")
    with pytest.raises(ValueError, match="not a readable image"):
        writer.add(junk, square_mask(), source=junk)
    with pytest.raises(ValueError, match="pass its pixels"):
        writer.add(tmp_path / "scan.dcm", square_mask(), source="scan.dcm")
    assert writer.records() == [] and _listing(tmp_path / "w") == before
    bitmap = write_png(tmp_path / "frame.dib", gray(seed=3))  # readable, but dataset readers do not list .dib
    assert writer.add(bitmap, square_mask(), source=bitmap).image.suffix == ".png"


def test_refuses_non_numeric_trainval_names(tmp_path):
    root = tn3k_copy(tmp_path / "tn3k", 2)
    write_png(root / "trainval-image" / "extra.png", gray())
    with pytest.raises(D.DatasetError, match="non-numeric"):
        DatasetWriter(root)


def test_replace_keeps_the_previous_mask_in_history(tmp_path):
    root = tmp_path / "d"
    writer = DatasetWriter(root)
    first = writer.add(gray(seed=2), square_mask(x=1), source="scan.dcm", frame_index=2, record={"proposed_by": "m1"})
    image_bytes = first.image.read_bytes()
    second = writer.add(gray(seed=2), square_mask(x=5), source="scan.dcm", frame_index=2, replace=True)
    third = writer.add(gray(seed=2), square_mask(x=9), source="scan.dcm", frame_index=2, replace=True)
    assert first == second == third and first.image.read_bytes() == image_bytes
    assert np.array_equal(D.read_mask(third.mask), square_mask(x=9))
    item = writer.index.items[first.key]
    assert [p.name for p in item.history] == ["0000.r1.png", "0000.r2.png"]
    assert np.array_equal(D.read_mask(item.history[0]), square_mask(x=1))
    assert np.array_equal(D.read_mask(item.history[1]), square_mask(x=5))
    assert [r["op"] for r in writer.records()] == ["add", "replace", "replace"]
    assert len(D.open_dataset(root).samples) == 1 and [_folds(root, k)["val"] for k in range(5)][0] == [0]
    assert check(root) == []


def test_a_changed_file_at_the_same_source_is_a_new_item(tmp_path):
    """Same source and frame but other pixels: replacing the mask alone would pair it with the wrong image."""
    writer = DatasetWriter(tmp_path / "d")
    writer.add(gray(seed=1), square_mask(), source="scan.png")
    again = writer.add(gray(seed=2), square_mask(x=6), source="scan.png", replace=True)
    assert again.key == "0001" and len(writer.index.items) == 2


def test_findings_spacing_and_blackout_are_recorded(tmp_path):
    root = tmp_path / "d"
    writer = DatasetWriter(root)
    frame = gray(h=20, w=30, seed=4)
    box = Box(2, 18, 5, 25)
    findings = Findings({"tirads": "4b", "composition": "solid"})
    sample = writer.add(frame, square_mask(h=20, w=30), source="scan.dcm", frame_index=7, findings=findings,
                        spacing_mm=(0.08, 0.09), blackout_outside=box)
    stored = cv2.imread(str(sample.image), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(stored[2:18, 5:25], frame[2:18, 5:25]) and not stored[:2].any() and not stored[:, 25:].any()
    item = writer.index.find(frame).item  # found by the original pixels
    assert item.key == sample.key and item.spacing_mm == (0.08, 0.09) and item.findings == findings
    assert item.record["blackout"] == [2, 18, 5, 25]
    assert read_labels(root / "labels.csv") == {sample.key: findings}
    writer.add(frame, square_mask(h=20, w=30, x=9), source="scan.dcm", frame_index=7, replace=True)  # findings unchanged
    assert read_labels(root / "labels.csv") == {sample.key: findings}
    changed = findings.replace("tirads", "3")
    writer.add(frame, square_mask(h=20, w=30, x=9), source="scan.dcm", frame_index=7, findings=changed, replace=True)
    assert read_labels(root / "labels.csv") == {sample.key: changed}
    assert DatasetIndex(root).items[sample.key].findings == changed and check(root) == []


def test_labels_csv_round_trip_keeps_other_columns(tmp_path):
    root = tn3k_copy(tmp_path / "tn3k", 3, mask_suffix=".png")
    (root / "labels.csv").write_text("id,tirads,composition,echogenicity,margins,calcifications,sex,age\n"
                                     "0001,4a,solid,,,,F,61\n0002,,,,,,M,40\n")
    writer = DatasetWriter(root)
    assert writer.index.items["0001"].findings == Findings({"tirads": "4a", "composition": "solid"})
    sample = writer.add(gray(seed=11), square_mask(), source="new.png", findings=Findings({"margins": "spiculated"}))
    text = (root / "labels.csv").read_text()
    assert text.splitlines() == ["id,tirads,composition,echogenicity,margins,calcifications,sex,age",
                                 "0001,4a,solid,,,,F,61", "0002,,,,,,M,40", f"{sample.key},,,,spiculated,,,"]
    assert check(root) == []
    (root / "labels.csv").write_text("id,tirads\n0001,5\n")
    assert any("0001" in p for p in check(root))
    fixed, left = repair(root)
    assert "labels.csv: rewritten from the records" in fixed and left == []


def test_lookup_by_content_then_by_record(tmp_path):
    root = tmp_path / "d"
    writer = DatasetWriter(root)
    frame = gray(seed=5)
    sample = writer.add(frame, square_mask(), source="cine.mp4", frame_index=12, findings=Findings({"tirads": "3"}))
    index = DatasetIndex(root)  # read-only: what the app opens to resume
    match = index.find(frame)
    assert match.matched_by == "content" and match.item.key == sample.key
    assert np.array_equal(match.item.read_mask(), square_mask()) and match.item.findings.get("tirads") == "3"
    by_record = index.find(source="cine.mp4", frame_index=12)
    assert by_record.matched_by == "file" and by_record.item.key == sample.key
    assert index.find(gray(seed=6), source="cine.mp4", frame_index=12).matched_by == "record"  # re-encoded video
    assert index.find(gray(h=5, seed=6), source="cine.mp4", frame_index=12) is None  # not even the size
    assert index.find(gray(seed=6)) is None and index.find(source="cine.mp4", frame_index=13) is None
    assert [item.sha256 for item in index.items.values()] == [content_hash(frame)]
    second = writer.add(gray(seed=7), square_mask(), source="b.png")
    assert index.find(gray(seed=7)).item.key == second.key  # the index reads what was appended since


def test_converts_a_dataset_of_the_older_writer(tmp_path):
    """The older writer's records had no header, no hashes; a crash could leave an image without a record."""
    root = tmp_path / "old"
    for i in range(3):
        write_png(root / "trainval-image" / f"{i:04d}.png", gray(seed=i))
        write_png(root / "trainval-mask" / f"{i:04d}.png", square_mask().astype(np.uint8) * 255)
    lines = [{"key": f"{i:04d}", "image": f"trainval-image/{i:04d}.png", "mask": f"trainval-mask/{i:04d}.png",
              "source": f"s{i}.png", "frame_index": 0, "saved_at": "2026-01-01T00:00:00+00:00", "proposed_by": "m"}
             for i in range(3)]
    (root / "records.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    write_png(root / "trainval-image" / "0003.png", gray(seed=3))  # the older writer's crash: no mask, no record
    assert any("older version" in p for p in check(root))
    fixed, left = repair(root)
    assert any("3 existing item(s) adopted" in f for f in fixed)
    assert any("0003.png: not in the records; moved to orphans/trainval-image/0003.png" in f for f in fixed), fixed
    assert left == []
    items = DatasetIndex(root).items
    assert list(items) == ["0000", "0001", "0002"] and items["0001"].source == "s1.png"
    assert items["0001"].record["proposed_by"] == "m" and (root / "history" / "records.v1.jsonl").is_file()


# ------------------------------------------------------------------ crashes


def _base(tmp_path: Path) -> Path:
    """A dataset with three committed items (one replaced, with findings)."""
    root = tmp_path / "base"
    writer = DatasetWriter(root)
    for i in range(3):
        writer.add(gray(seed=i), square_mask(x=i), source=f"s{i}.png", findings=Findings({"tirads": "3"}) if i else None)
    writer.add(gray(seed=1), square_mask(x=7), source="s1.png", replace=True, findings=Findings({"tirads": "5"}))
    return root


def _operation(op: str):
    if op == "add":
        return dict(image=gray(seed=9), mask=square_mask(x=9), source="new.png", findings=Findings({"tirads": "4a"}))
    return dict(image=gray(seed=2), mask=square_mask(x=10), source="s2.png", findings=Findings({"tirads": "4c"}),
                replace=True)


@pytest.mark.parametrize("op", ["add", "replace"])
@pytest.mark.parametrize("error", [Crash, OSError])
def test_a_failure_at_any_step_leaves_the_last_commit(tmp_path, monkeypatch, op, error):
    """Fail each os.replace/os.fsync of one add or replace in turn, then reopen: the dataset is consistent,
    what was committed before is intact, and the change is wholly in or wholly out."""
    base = _base(tmp_path)
    before = {key: (item.image.read_bytes(), item.mask.read_bytes(), item.findings)
              for key, item in DatasetIndex(base).items.items()}
    with monkeypatch.context() as m:  # count the steps of a clean run
        steps = failing_at(m, None, error)
        DatasetWriter(shutil.copytree(base, tmp_path / "count")).add(**_operation(op))
    outcomes = set()
    for step in range(1, steps["n"] + 1):
        root = shutil.copytree(base, tmp_path / f"{op}-{step}")
        writer = DatasetWriter(root)
        with monkeypatch.context() as m:
            failing_at(m, step, error)
            with pytest.raises(error):
                writer.add(**_operation(op))
        reopened = DatasetWriter(root)  # recovery
        assert check(root) == [], (step, reopened.recovered)
        items = reopened.index.items
        for key, (image, mask, findings) in before.items():
            changed = op == "replace" and key == "0002"
            assert items[key].image.read_bytes() == image
            assert changed or (items[key].mask.read_bytes(), items[key].findings) == (mask, findings), (step, key)
        if op == "add":
            done = len(items) == 4
            assert not done or (np.array_equal(items["0003"].read_mask(), square_mask(x=9))
                                and items["0003"].findings.get("tirads") == "4a")
        else:
            done = np.array_equal(items["0002"].read_mask(), square_mask(x=10))
            assert done == (items["0002"].findings.get("tirads") == "4c") == (len(items["0002"].history) == 1)
            assert done or items["0002"].mask.read_bytes() == before["0002"][1]
        outcomes.add(done)
        assert not (root / JOURNAL).exists()
    assert outcomes == {False, True}  # failures fell both before and after the commit


def test_a_torn_record_line_is_cut_off_and_its_files_undone(tmp_path):
    root = _base(tmp_path)
    writer = DatasetWriter(root)
    records = (root / "records.jsonl").read_bytes()
    # a crash in the middle of the commit: journal, image and mask in place, half a record line
    (root / JOURNAL).write_text(json.dumps({"op": "add", "key": "0003",
                                            "files": ["trainval-image/0003.png", "trainval-mask/0003.png"]}))
    write_png(root / "trainval-image" / "0003.png", gray(seed=9))
    write_png(root / "trainval-mask" / "0003.png", square_mask().astype(np.uint8) * 255)
    (root / "records.jsonl").write_bytes(records + b'{"op": "add", "key": "00')
    (root / "trainval-mask" / ".0004.abc.tmp.png").write_bytes(b"partial")
    assert len(check(root)) >= 3
    reopened = DatasetWriter(root)
    assert any("torn" in line for line in reopened.recovered) and any("undid" in line for line in reopened.recovered)
    assert (root / "records.jsonl").read_bytes() == records and check(root) == []
    assert len(writer.index.items) == 3


def test_repair_drops_records_whose_files_are_gone_and_moves_orphans(tmp_path):
    root = _base(tmp_path)
    (root / "trainval-mask" / "0001.png").unlink()
    write_png(root / "trainval-image" / "0042.png", gray(seed=42))
    (root / "tn3k-trainval-fold3.json").write_text("{}")
    problems = check(root)
    assert any("0001: its mask" in p for p in problems) and any("0042.png: not in the records" in p for p in problems)
    assert any("fold3" in p for p in problems)
    fixed, left = repair(root)
    assert left == [], left
    assert (root / "orphans" / "trainval-image" / "0042.png").is_file()
    assert (root / "orphans" / "trainval-image" / "0001.png").is_file()  # the image of the dropped item kept
    assert list(DatasetIndex(root).items) == ["0000", "0002"]
    assert [s.key for s in D.open_dataset(root).split("fold0-val")] == ["0000"]


def test_check_reports_masks_that_are_not_0_255_or_not_the_image_size(tmp_path):
    root = tmp_path / "pair"
    write_png(root / "image" / "a.png", gray())
    write_png(root / "mask" / "a.png", np.full((12, 16), 128, np.uint8))
    write_png(root / "image" / "b.png", gray(seed=1))
    write_png(root / "mask" / "b.png", np.zeros((5, 5), np.uint8))
    write_png(root / "image" / "c.png", gray(seed=2))
    assert check(root) == ["mask/a.png: holds values 128, not only 0 and 255", "mask/b.png: 5x5, its image 16x12",
                           "image/c.png: no mask"]
