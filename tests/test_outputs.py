"""The output plan (engine/io/outputs.py) and the CSV tables (engine/io/tables.py): where a command may write, which
names one disk calls the same, the output folder's lock, and text cells that cannot execute yet read back."""
from __future__ import annotations

import csv
import io
import os
import unicodedata

import pytest

from thyroid_studio.engine.datasets.index import RECORDS
from thyroid_studio.engine.datasets.writer import LOCK
from thyroid_studio.engine.io.outputs import DATASET_FILES, OutputError, OutputPlan, folder_lock, name_key
from thyroid_studio.engine.io.tables import TableError, TableWriter, neutralised, read_table, restored


def test_the_dataset_markers_are_the_writers_files():
    assert set(DATASET_FILES) == {RECORDS, LOCK}


# ---------------------------------------------------------------- the plan


def test_an_output_that_is_an_input_by_a_link_is_refused(tmp_path):
    real = tmp_path / "real" / "a.png"
    real.parent.mkdir()
    real.write_bytes(b"x")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "b.png").symlink_to(real)
    plan = OutputPlan([real])
    assert plan.file_problem(tmp_path / "out" / "b.png") == f"would replace the input {real}"
    linked = OutputPlan([tmp_path / "out" / "b.png"])  # the input given by the link's own name
    assert linked.file_problem(tmp_path / "out" / "b.png") == f"is the input {tmp_path / 'out' / 'b.png'}"
    assert linked.file_problem(real) is not None  # and what it points to is that input too


def test_another_name_of_the_same_file_is_refused(tmp_path):
    real = tmp_path / "a.png"
    real.write_bytes(b"x")
    os.link(real, tmp_path / "hard.png")
    assert OutputPlan([real]).file_problem(tmp_path / "hard.png") == f"is another name of the input {real}"


def test_folders_and_devices_are_refused_as_output_files(tmp_path):
    (tmp_path / "folder.png").mkdir()
    os.mkfifo(tmp_path / "pipe.png")
    plan = OutputPlan()
    assert plan.file_problem(tmp_path / "folder.png") == "is a folder"
    assert plan.file_problem(tmp_path / "pipe.png") == "is not a regular file (a pipe, socket or device)"
    assert plan.file_problem("/dev/null") == "is not a regular file (a pipe, socket or device)"
    (tmp_path / "dangling.png").symlink_to(tmp_path / "nowhere.png")
    assert plan.file_problem(tmp_path / "dangling.png") is None  # absent: the link itself is replaced


@pytest.mark.parametrize("layout", ["records", "lock", "tn3k", "pair"])
def test_nothing_is_written_into_a_dataset(tmp_path, layout):
    root = tmp_path / "ds"
    root.mkdir()
    marker = {"records": "records.jsonl", "lock": ".dataset.lock"}.get(layout)
    if marker:
        (root / marker).write_text("")
        target = root / "sub" / "x.png"
    else:
        images, masks = ("trainval-image", "trainval-mask") if layout == "tn3k" else ("image", "mask")
        (root / images).mkdir()
        (root / masks).mkdir()
        target = root / masks / "0001.png"
    plan = OutputPlan()
    assert plan.file_problem(target).startswith(f"lies inside the dataset {root}")
    assert plan.folder_problem(target.parent).startswith(f"lies inside the dataset {root}")
    if marker:
        assert plan.folder_problem(root, dataset=True) is None  # the dataset writer's own folder


def test_a_folder_may_not_hold_or_lie_inside_an_input(tmp_path):
    inputs = tmp_path / "in"
    (inputs / "sub").mkdir(parents=True)
    (inputs / "sub" / "x.png").write_bytes(b"x")
    plan = OutputPlan([inputs / "sub" / "x.png"])
    assert plan.folder_problem(inputs) == f"holds the input {inputs / 'sub' / 'x.png'}"
    assert plan.folder_problem(inputs / "sub") == f"is the folder of the input {inputs / 'sub' / 'x.png'}"
    assert OutputPlan([inputs]).folder_problem(inputs / "sub" / "out") == f"is inside the input folder {inputs}"
    (tmp_path / "link").symlink_to(inputs / "sub")
    assert plan.folder_problem(tmp_path / "link") is not None  # links followed
    with pytest.raises(OutputError, match="^--out .* choose a folder outside the inputs$"):
        plan.check_folder(tmp_path / "link", "--out")


def test_two_outputs_of_one_run_with_one_name_on_a_case_insensitive_disk(tmp_path):
    plan = OutputPlan()
    assert plan.claim(tmp_path / "Scan.png", "a.png", "mask") is None
    assert plan.claim(tmp_path / "Scan.png", "a.png", "mask") is None  # the same claim again
    assert plan.claim(tmp_path / "scan.png", "b.png", "overlay") == "would overwrite the mask of a.png"


def test_name_keys_fold_case_and_normal_form_as_disks_do():
    assert name_key("Scan.PNG") == name_key("scan.png")
    assert name_key("STRASSE.png") != name_key("straße.png")  # no disk folds ß into ss
    nfc, nfd = unicodedata.normalize("NFC", "café.png"), unicodedata.normalize("NFD", "café.png")
    assert nfc != nfd and name_key(nfc) == name_key(nfd)  # one file on macOS


def test_the_output_folder_lock_refuses_a_second_run_and_leaves_nothing(tmp_path):
    with folder_lock(tmp_path):
        with pytest.raises(OutputError, match="is being written by another run"):
            with folder_lock(tmp_path):
                pass
    with folder_lock(tmp_path):  # released
        pass
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- tables


@pytest.mark.parametrize("cell", ["=HYPERLINK(\"http://x\")", "+cmd", "-2+3", "@SUM(A1)", "\tx", "\rx", "'quoted",
                                  "''", "'=x"])
def test_cells_that_start_like_formulas_are_neutralised_and_read_back(cell):
    written = neutralised(cell)
    assert written.startswith("'") and restored(written) == cell


@pytest.mark.parametrize("cell", ["-1.5", "+3", "1e-5", "a.png", "", "scan-1.png", "x=1"])
def test_numbers_and_plain_text_are_left_as_they_are(cell):
    assert neutralised(cell) == cell and restored(cell) == cell


def test_a_table_round_trips_formulas_and_line_breaks():
    out = io.StringIO()
    writer = TableWriter(out, ["file", "n"], lineterminator="\n")
    writer.writeheader()
    names = ["=1+1.png", "a\rb.png", "c\nd.png", "-x.png", "'y.png"]
    writer.writerows({"file": name, "n": -1} for name in names)
    text = out.getvalue()
    assert all(row[0] != "=" for row in csv.reader(io.StringIO(text, newline="")))  # no cell a spreadsheet would run
    header, rows = read_table(text, "t.csv")
    assert header == ["file", "n"] and [r.cells["file"] for r in rows] == names
    assert {r.cells["n"] for r in rows} == {"-1"}


def test_a_repeated_column_and_rows_of_another_width_are_said():
    with pytest.raises(TableError, match="t.csv: the header names column 'a' twice \\(columns 1 and 3\\)"):
        read_table("a,b,a\n1,2,3\n", "t.csv")
    _, rows = read_table("a,b\n1,2,3\n4\n5,6\n", "t.csv")
    assert [(r.line, r.problem) for r in rows] == [(2, "has 3 fields; the header has 2"),
                                                   (3, "has 1 fields; the header has 2"), (4, None)]
