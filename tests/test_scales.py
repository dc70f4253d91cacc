"""Scales the user sets (engine/labels/scales.py) and what the worklist measures, saves and reports with
them: a file's scale over its own DICOM calibration over its folder's scale; the source recorded with
saved items; kept rules read back, damaged ones named."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from thyroid_studio.engine.calibration import SOURCES, Calibration
from thyroid_studio.engine.datasets.index import DatasetIndex
from thyroid_studio.engine.datasets.writer import DatasetWriter
from thyroid_studio.engine.inference.segmenter import Segmentation
from thyroid_studio.engine.labels.scales import SCOPES, ScaleRules
from thyroid_studio.engine.labels.worklist import Worklist

from frame_files import write_dicom

USER = Calibration((0.25, 0.25), None, "user")
RULER = Calibration((0.2, 0.2), None, "ruler")
DICOM = Calibration((0.1, 0.1))


def gray(path: Path, shape=(40, 60)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.full(shape, 90, np.uint8)
    pixels[10:20, 10:30] = 30
    assert cv2.imwrite(str(path), pixels)
    return path


def test_a_files_scale_wins_over_its_own_calibration_which_wins_over_its_folders(tmp_path):
    rules = ScaleRules()
    scan, other = tmp_path / "case" / "scan.dcm", tmp_path / "case" / "other.png"
    rules.set(scan, "folder", RULER)
    assert rules.calibration(other, None) == RULER  # a file without one of its own takes the folder's
    assert rules.calibration(scan, DICOM) == DICOM  # the DICOM header stands over the folder's scale
    rules.set(scan, "file", USER)
    assert rules.calibration(scan, DICOM) == USER  # the user measured on this very file
    assert rules.calibration(tmp_path / "elsewhere.png", None) is None
    assert [r.scope for r in rules.forget(scan)] == ["file", "folder"]
    assert rules.calibration(other, None) is None and len(rules) == 0
    with pytest.raises(ValueError, match="unknown scale scope"):
        rules.set(scan, "everywhere", USER)


def test_rules_read_back_and_damaged_entries_named(tmp_path):
    rules = ScaleRules()
    rules.set(tmp_path / "a.png", "file", USER)
    rules.set(tmp_path / "a.png", "folder", RULER)
    kept = json.loads(json.dumps(rules.to_json()))
    back, problems = ScaleRules.from_json(kept)
    assert problems == [] and list(back) == list(rules)
    bad = kept + [{"scope": "file", "place": "/x.png", "spacing_mm": [0, 1], "source": "user"},
                  {"scope": "file", "place": "/y.png", "spacing_mm": [0.1, 0.1], "source": "guess"}, "junk"]
    back, problems = ScaleRules.from_json(bad)
    assert len(back) == 2 and len(problems) == 3 and all("could not be read" in p for p in problems)
    assert ScaleRules.from_json({"not": "a list"})[1] == ["the kept scales could not be read; they are forgotten"]


def test_worklist_measures_saves_and_reports_with_the_scale_set(tmp_path):
    work = Worklist()
    first, second = gray(tmp_path / "case" / "1.png"), gray(tmp_path / "case" / "2.png")
    dicom = write_dicom(tmp_path / "case" / "3.dcm", np.full((40, 60), 90, np.uint8), PixelSpacing=[0.1, 0.1])
    rows, _ = work.add([first, second, dicom, gray(tmp_path / "other" / "4.png")])
    for row in rows:
        work.frame(row)
    mask = np.zeros((40, 60), bool)
    mask[10:20, 10:30] = True
    assert work.calibration(rows[0]) is None and work.spacing_for(rows[0], mask) is None
    assert work.calibration(rows[2]) == Calibration((0.1, 0.1))

    changed = work.set_scale(rows[0], RULER, "folder")
    assert changed == [rows[0], rows[1]]  # the DICOM keeps its own, the other folder is untouched
    assert work.spacing_for(rows[1], mask) == (0.2, 0.2)
    assert work.set_scale(rows[2], USER, "file") == [rows[2]] and work.calibration(rows[2]) == USER

    work.label(rows[1]).replace(mask, "paint")
    work.set_prediction(rows[1], "trfe", Segmentation(mask.astype(np.float32), mask), "tiny")
    page = work.report_page(rows[1])
    table = next(t for t in page.tables if t.title == "Measurements")
    assert dict((r[0], r[1]) for r in table.rows)["Area"] == "8.0 mm² (200 px)"
    assert "Millimetres: 0.2 mm/px from the depth ruler's tick marks." in table.note

    writer = DatasetWriter(tmp_path / "dataset")
    work.save(rows[1], writer)
    item = next(iter(DatasetIndex(tmp_path / "dataset").items.values()))
    assert item.spacing_mm == (0.2, 0.2) and item.scale_source == "ruler"
    assert writer.records()[-1]["scale_source"] == "ruler"

    assert work.forget_scale(rows[0]) == [rows[0], rows[1]]
    assert work.calibration(rows[1]) is None and work.calibration(rows[2]) == USER  # another file's rule stays


def test_writer_records_where_the_spacing_came_from_and_refuses_nonsense(tmp_path):
    writer = DatasetWriter(tmp_path / "dataset")
    pixels, mask = np.full((20, 20), 80, np.uint8), np.zeros((20, 20), bool)
    writer.add(pixels, mask, source="a.png", spacing_mm=(0.2, 0.2), scale_source="user")
    assert writer.records()[-1]["scale_source"] == "user"
    for spacing, source in (((0.2, 0.2), "guess"), (None, "ruler")):
        with pytest.raises(ValueError, match="scale_source"):
            writer.add(np.full((20, 20), 81, np.uint8), mask, source="b.png", spacing_mm=spacing, scale_source=source)


def test_every_source_and_scope_is_described():
    assert all(Calibration((0.1, 0.1), None, source).describe().endswith(text) for source, text in SOURCES.items())
    assert Calibration((0.1, 0.2)).describe() == "0.1 x 0.2 mm/px (row x column) from the DICOM header"
    assert set(SCOPES) == {"file", "folder"}
    with pytest.raises(ValueError, match="unknown calibration source"):
        Calibration((0.1, 0.1), None, "guess")
