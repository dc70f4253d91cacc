"""Every bad input gets one clear line: the issue-10 battery, case by case, through the real command line.

Exit statuses: 0 all done, 1 some inputs failed (the rest done), 2 usage error (nothing done).
"""
from __future__ import annotations

import csv
import errno
import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from thyroid_studio import cli
from thyroid_studio.app import launch
from thyroid_studio.engine.calibration import Calibration
from thyroid_studio.engine.datasets.layouts import read_mask
from thyroid_studio.engine.inference import batch
from thyroid_studio.engine.models.architectures import build_model
from thyroid_studio.engine.models.checkpoint import ModelMeta, save_checkpoint

from cli_files import image, scored_folder
from dataset_files import write_nodule_pairs
from frame_files import dicom_bomb, png_claiming, write_avi


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    meta = ModelMeta("unet", 4, input_size=(32, 32), name="unet-tiny")
    return save_checkpoint(tmp_path_factory.mktemp("model") / "tiny.pt", build_model("unet", 4), meta)


def segment(*args: str | Path, model: Path) -> int:
    return cli.main(["segment", *map(str, args), "--model", str(model), "--device", "cpu"])


def error_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if not line.startswith(("segment:", "\r"))
            and "frames/s" not in line and "it/s]" not in line and "frame/s]" not in line]


# ---------------------------------------------------------------- segment


def test_an_overlay_never_overwrites_another_inputs_mask(tmp_path, checkpoint, capsys):
    first, second = image(tmp_path / "y" / "a_overlay.png"), image(tmp_path / "z" / "a.png", level=150)
    out = tmp_path / "out"
    assert segment(first, second, "--out", out, "--overlay", model=checkpoint) == 1
    lines = [line for line in error_lines(capsys) if line.startswith("skipped")]
    assert lines == [f"skipped a.png: its overlay a_overlay.png would overwrite the mask of {first}; rename one of them "
                     "or segment them into different --out folders"]
    mask = cv2.imread(str(out / "a_overlay.png"), cv2.IMREAD_UNCHANGED)
    assert mask.ndim == 2 and set(np.unique(mask)) <= {0, 255}  # still y/a_overlay.png's mask
    assert not (out / "a.png").exists()
    rows = list(csv.DictReader((out / "segmentation.csv").open()))
    assert [(Path(r["file"]).name, r["mask"]) for r in rows] == [("a_overlay.png", "a_overlay.png")]


def test_same_stem_in_one_folder_and_names_differing_in_case_clash(tmp_path, checkpoint, capsys):
    folder = tmp_path / "in"
    image(folder / "scan.png"), image(folder / "scan.jpg"), image(folder / "Scan.bmp")
    assert segment(folder, "--out", tmp_path / "out", model=checkpoint) == 1
    skipped = sorted(line.split(":")[0] for line in error_lines(capsys) if line.startswith("skipped"))
    assert skipped == ["skipped scan.jpg", "skipped scan.png"]  # Scan.bmp (first in sorted order) keeps Scan.png
    assert [p.name for p in (tmp_path / "out").glob("*.png")] == ["Scan.png"]


@pytest.mark.parametrize("kind", ["existing file", "under a file"])
def test_out_that_cannot_be_a_folder_is_one_line(tmp_path, checkpoint, capsys, kind):
    source = image(tmp_path / "in" / "a.png")
    blocker = tmp_path / "taken.txt"
    blocker.write_text("x")
    out = blocker if kind == "existing file" else blocker / "masks"
    assert segment(source, "--out", out, model=checkpoint) == 2
    expected = "is a file, not a folder" if kind == "existing file" else f"cannot be created under the file {blocker}"
    assert error_lines(capsys) == [f"thyroid-studio segment: --out {out} {expected}"]
    assert blocker.read_text() == "x"


def test_out_that_cannot_be_written_is_one_line(tmp_path, checkpoint, capsys, monkeypatch):
    source = image(tmp_path / "in" / "a.png")

    def refuse(*_args, **_kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(batch.tempfile, "TemporaryFile", refuse)  # as a read-only folder does (root ignores chmod)
    assert segment(source, "--out", tmp_path / "out", model=checkpoint) == 2
    assert error_lines(capsys) == [f"thyroid-studio segment: --out {tmp_path / 'out'} cannot be written (Permission denied)"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_out(tmp_path, checkpoint, capsys):
    source = image(tmp_path / "in" / "a.png")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        assert segment(source, "--out", locked, model=checkpoint) == 2
        assert error_lines(capsys) == [f"thyroid-studio segment: --out {locked} is read-only"]
    finally:
        locked.chmod(0o755)


def test_disk_full_at_the_csv_close_leaves_no_partial_csv(tmp_path, checkpoint, capsys, monkeypatch):
    sources = [image(tmp_path / "in" / f"{name}.png") for name in ("a", "b")]

    def full_disk_open(path, *args, **kwargs):
        handle = open(path, *args, **kwargs)

        class FullDisk:
            def __getattr__(self, name):
                return getattr(handle, name)

            def close(self):
                handle.close()
                raise OSError(errno.ENOSPC, "No space left on device")

        return FullDisk()

    monkeypatch.setattr(batch, "open", full_disk_open, raising=False)
    out = tmp_path / "out"
    assert segment(*sources, "--out", out, model=checkpoint) == 1
    assert "thyroid-studio segment: segmentation.csv: could not be written (No space left on device); " \
           "the masks written are in place" in error_lines(capsys)
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]  # no CSV, no .partial, no temporary file


def test_an_unreadable_subfolder_is_reported_with_exit_1(tmp_path, checkpoint, capsys, monkeypatch):
    folder = tmp_path / "in"
    image(folder / "ok" / "a.png")
    (folder / "locked").mkdir()
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(path) == folder / "locked":
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    assert segment(folder, "--out", tmp_path / "out", model=checkpoint) == 1
    assert "skipped locked: is a folder that cannot be read (Permission denied)" in error_lines(capsys)
    assert (tmp_path / "out" / "ok" / "a.png").is_file()


def test_a_truncated_avi_reports_its_missing_frames(tmp_path, checkpoint, capsys):
    whole = write_avi(tmp_path / "whole.avi", list(range(0, 200, 20)), size=(32, 24))
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "cut.avi").write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.8)])
    out = tmp_path / "out"
    assert segment(folder, "--out", out, model=checkpoint) == 1
    [line] = [line for line in error_lines(capsys) if line.startswith("skipped")]
    assert line.startswith("skipped cut.avi: the video holds only ") and "of the 10 frames its header gives" in line
    decoded = int(line.split("holds only ")[1].split()[0])
    rows = list(csv.DictReader((out / "segmentation.csv").open()))
    assert 0 < decoded < 10 and len(rows) == decoded == len(list(out.glob("cut_f*.png")))


def test_bombs_through_segment(tmp_path, checkpoint, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    dicom_bomb(folder / "bomb.dcm")
    (folder / "huge.png").write_bytes(png_claiming(20000, 20000))
    out = tmp_path / "out"
    assert segment(folder, "--out", out, model=checkpoint) == 1
    lines = sorted(line for line in error_lines(capsys) if line.startswith("skipped"))
    assert lines[0].startswith("skipped bomb.dcm: the pixel data holds only 3 of the 1000000000 frames")
    assert lines[1].startswith("skipped huge.png: a frame of 20000 x 20000 pixels exceeds the limit of 50 megapixels")
    assert sorted(p.name for p in out.glob("*.png")) == ["bomb_f0000.png", "bomb_f0001.png", "bomb_f0002.png"]


@pytest.mark.parametrize("value", ["nan", "5", "-1", "0", "1", "abc"])
def test_threshold_outside_0_1_is_a_usage_error(tmp_path, checkpoint, capsys, value):
    with pytest.raises(SystemExit) as stopped:
        segment(image(tmp_path / "a.png"), "--out", tmp_path / "out", "--threshold", value, model=checkpoint)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --threshold: must be a number between 0 and 1 (exclusive), got '{value}'" in err
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- evaluate


@pytest.fixture
def scored(tmp_path) -> Path:
    return scored_folder(tmp_path, "abc")


def evaluate(root: Path, *extra: str) -> int:
    return cli.main(["evaluate", "--predictions", str(root / "predictions"), "--images", str(root / "images"),
                     "--masks", str(root / "masks"), "--json", str(root / "scores.json"), *extra])


@pytest.mark.parametrize("broken", ["masks", "predictions"])
def test_a_zero_byte_mask_or_prediction_is_one_line_and_the_rest_are_scored(scored, capsys, broken):
    (scored / broken / "b.png").write_bytes(b"")
    assert evaluate(scored) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"not scored: {scored / broken / 'b.png'}: cannot read the mask: empty file"]
    report = json.loads((scored / "scores.json").read_text())
    assert [row["name"] for row in report["per_image"]] == ["a", "c"]
    assert report["summary"]["per_image"]["dice"]["mean"] == 1.0


def test_masks_stored_as_0_1_are_read_as_masks(scored, capsys):
    for folder in ("masks", "predictions"):
        for stem in ("a", "b", "c"):
            mask = cv2.imread(str(scored / folder / f"{stem}.png"), cv2.IMREAD_UNCHANGED)
            cv2.imwrite(str(scored / folder / f"{stem}.png"), (mask > 0).astype(np.uint8))
    assert evaluate(scored) == 0
    summary = json.loads((scored / "scores.json").read_text())["summary"]
    assert summary["n"] == 3 and summary["per_image"]["dice"]["mean"] == 1.0
    assert read_mask(scored / "masks" / "a.png").sum() == 8 * 12


def test_evaluate_json_that_cannot_be_written(scored, capsys):
    (scored / "scores.json").mkdir()
    assert evaluate(scored) == 2
    assert capsys.readouterr().err == f"thyroid-studio evaluate: --json {scored / 'scores.json'} is a folder\n"
    assert cli.main(["evaluate", "--predictions", str(scored / "nope"), "--images", str(scored / "images"),
                     "--masks", str(scored / "masks")]) == 2
    assert capsys.readouterr().err == f"thyroid-studio evaluate: {scored / 'nope'}: not a folder\n"


# ---------------------------------------------------------------- finetune and train arguments


@pytest.fixture(scope="module")
def corrected(tmp_path_factory) -> Path:
    return write_nodule_pairs(tmp_path_factory.mktemp("corrected") / "data", [str(i) for i in range(1, 9)], seed=4)


def finetune(source: Path, nodules: Path, *extra: str | Path) -> int:
    return cli.main(["finetune", "--from", str(source), "--nodules", str(nodules), "--device", "cpu", *map(str, extra)])


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--lr", "nan", "must be a finite number > 0"),
    ("--lr", "0", "must be a finite number > 0"),
    ("--epochs", "0", "must be a whole number from 1"),
    ("--epochs", "-2", "must be a whole number from 1"),
    ("--batch", "0", "must be a whole number from 1"),
    ("--batch", "-4", "must be a whole number from 1"),
    ("--held-fraction", "0", "must be a number between 0 and 1"),
    ("--held-fraction", "1.5", "must be a number between 0 and 1"),
    ("--replay-ratio", "-1", "must be a finite number >= 0"),
    ("--out", "new.md", "must name a .pt file"),
])
def test_finetune_argument_ranges(tmp_path, checkpoint, corrected, capsys, option, value, message):
    with pytest.raises(SystemExit) as stopped:
        finetune(checkpoint, corrected, option, value)
    captured = capsys.readouterr()
    assert stopped.value.code == 2 and f"argument {option}: {message}" in captured.err and captured.out == ""
    assert not list(tmp_path.iterdir())


def test_finetune_never_overwrites_a_card_and_reports_on_stderr(tmp_path, checkpoint, corrected, capsys):
    card = tmp_path / "mine.md"
    card.write_text("my notes")
    assert finetune(checkpoint, corrected, "--out", tmp_path / "mine.pt") == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == (
        f"thyroid-studio finetune: --out {tmp_path / 'mine.pt'}: its card {card} exists and would be overwritten; "
        "choose another --out\n")
    assert card.read_text() == "my notes" and not (tmp_path / "mine.pt").exists()
    assert finetune(tmp_path / "missing.pt", corrected, "--out", tmp_path / "x.pt") == 2
    assert "no such checkpoint file" in capsys.readouterr().err


def train(*args: str | Path) -> int:
    return cli.main(["train", "--device", "cpu", "--epochs", "1", "--width", "2", "--size", "32", *map(str, args)])


@pytest.mark.parametrize(("option", "value"), [
    ("--folds", "0"), ("--folds", "1"), ("--size", "100"), ("--size", "16"), ("--width", "0"), ("--width", "100000"),
    ("--batch-pairs", "0"), ("--lr", "nan"), ("--epochs", "0"), ("--fold", "-1"), ("--seed", "-1"),
])
def test_train_argument_ranges(tmp_path, corrected, capsys, option, value):
    with pytest.raises(SystemExit) as stopped:
        train("--arch", "unet", "--nodules", corrected, "--out", tmp_path / "run", option, value)
    assert stopped.value.code == 2 and f"argument {option}: must be" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_train_input_problems_are_one_line_each(tmp_path, corrected, capsys):
    unlabelled = tmp_path / "unlabelled"
    shutil.copytree(corrected / "image", unlabelled / "image")
    cases = [
        (["--arch", "unet", "--nodules", tmp_path / "nowhere"], f"{tmp_path / 'nowhere'}: not a folder"),
        (["--arch", "unet", "--nodules", unlabelled], "8 of 8 frames have no mask"),
        (["--arch", "unet", "--nodules", corrected, "--fold", "7", "--folds", "5"],
         "--fold 7 is out of range for --folds 5 (0 to 4)"),
        (["--arch", "unet", "--nodules", corrected, "--folds", "20"], "cannot make 20 folds from 8 exams"),
        (["--arch", "trfe-a", "--nodules", corrected], "--arch trfe-a has a gland head and needs a gland dataset"),
        (["--arch", "trfe-a", "--nodules", corrected, "--glands", corrected], "no split 'train'"),
    ]
    for args, message in cases:
        assert train(*args, "--out", tmp_path / "run") == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and err[0].startswith("thyroid-studio train: ") and message in err[0], (message, err)
        assert not (tmp_path / "run").exists()


def test_a_failed_run_leaves_no_run_folder(tmp_path, corrected, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(corrected, broken)
    (broken / "image" / "5.png").write_bytes(b"")  # found by the dataset, fails when training reads it
    assert train("--arch", "unet", "--nodules", broken, "--out", tmp_path / "run") == 1
    err = capsys.readouterr().err.splitlines()
    assert err == ["thyroid-studio train: the run failed, nothing kept: 5.png: empty file"]
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- models


@pytest.fixture
def model_folders(tmp_path, checkpoint, monkeypatch) -> Path:
    shipped, user = tmp_path / "shipped", tmp_path / "home" / "models"
    shipped.mkdir()
    user.mkdir(parents=True)
    shutil.copy(checkpoint, shipped / "good.pt")
    (shipped / "defaults.json").write_text(json.dumps({"trfe": "good.pt", "unet": "good.pt"}))
    payload = torch.load(checkpoint, weights_only=True)
    payload["meta"]["width"] = 100000
    torch.save(payload, user / "crafted.pt")
    (user / "garbage.pt").write_bytes(b"not a checkpoint")
    monkeypatch.setenv("THYROID_STUDIO_MODELS", str(shipped))
    monkeypatch.setenv("THYROID_STUDIO_HOME", str(tmp_path / "home"))
    return user


def test_models_skips_a_malformed_checkpoint_with_one_line(model_folders, capsys):
    assert cli.main(["models"]) == 1
    captured = capsys.readouterr()
    err = captured.err.splitlines()
    assert len(err) == 2
    assert err[0].startswith(f"thyroid-studio models: skipped {model_folders / 'crafted.pt'}: metadata 'width' must be")
    assert err[1].startswith(f"thyroid-studio models: skipped {model_folders / 'garbage.pt'}: not a readable checkpoint")
    assert [line.split()[0] for line in captured.out.splitlines()[1:-1]] == ["good"]


def test_models_dialog_lists_the_good_ones_and_says_which_it_skipped(model_folders, qtbot):
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QLabel

    from thyroid_studio.app.dialogs.models_dialog import ModelsDialog

    settings = QSettings(str(model_folders / "settings.ini"), QSettings.Format.IniFormat)
    dialog = ModelsDialog(settings)
    qtbot.addWidget(dialog)
    assert [dialog.combos["trfe"].itemText(i).split()[0] for i in range(dialog.combos["trfe"].count())] == ["unet-tiny"]
    skipped = [label.text() for label in dialog.findChildren(QLabel) if label.text().startswith("Skipped")]
    assert len(skipped) == 2 and "crafted.pt" in skipped[0] and "garbage.pt" in skipped[1]


def test_a_broken_defaults_file_is_a_clear_error(model_folders, tmp_path, capsys):
    (tmp_path / "shipped" / "defaults.json").write_text("{not json")
    assert cli.main(["segment", str(image(tmp_path / "a.png")), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.startswith(f"thyroid-studio segment: {tmp_path / 'shipped' / 'defaults.json'}: "
                                              "names no trfe model")


# ---------------------------------------------------------------- the desktop app on a bare Linux


def test_a_missing_xcb_cursor_library_prints_the_fix(monkeypatch, capsys):
    monkeypatch.setattr(launch.sys, "platform", "linux")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(launch.ctypes.util, "find_library", lambda name: None if name == "xcb-cursor" else "lib.so")
    assert launch.launch_app([]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert "libxcb-cursor0" in line and "sudo apt install libxcb-cursor0" in line
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert launch.platform_plugin_problem() is None
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    assert launch.platform_plugin_problem() == launch.XCB_CURSOR_FIX
    monkeypatch.setattr(launch.ctypes.util, "find_library", lambda name: "libxcb-cursor.so.0")
    monkeypatch.setenv("DISPLAY", ":0")
    assert launch.platform_plugin_problem() is None
    monkeypatch.delenv("DISPLAY")
    assert launch.platform_plugin_problem() == launch.NO_DISPLAY  # instead of Qt's abort (exit 134)


def test_a_mistyped_subcommand_is_a_usage_error_not_the_app(capsys):
    assert cli.main(["segmnt", "scans/"]) == 2
    assert capsys.readouterr().err == (f"thyroid-studio: 'segmnt' is neither a subcommand ({', '.join(cli.SUBCOMMANDS)}) "
                                       "nor a file or folder to open\n")


def test_empty_input_and_resume_without_a_run_are_usage_errors(tmp_path, checkpoint, corrected, capsys):
    (tmp_path / "empty").mkdir()
    assert segment(tmp_path / "empty", "--out", tmp_path / "out", model=checkpoint) == 2
    assert capsys.readouterr().err == f"thyroid-studio segment: no images, DICOM or video found in {tmp_path / 'empty'}\n"
    assert train("--arch", "unet", "--nodules", corrected, "--out", tmp_path / "run", "--resume") == 2
    assert "holds no run to continue" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() and not (tmp_path / "run").exists()


def test_millimetres_only_for_a_nodule_inside_the_calibrated_region():
    from thyroid_studio.engine.inference.segmenter import Segmentation
    from thyroid_studio.engine.io.frames import Frame

    frame = Frame(np.zeros((40, 60), np.uint8), Path("us.dcm"), calibration=Calibration((0.1, 0.1), (10, 5, 49, 34)))
    mask = np.zeros((40, 60), bool)
    mask[10:20, 15:30] = True
    result = Segmentation(mask.astype(np.float32), mask, None, None)
    inside = batch.csv_row(frame, result, "m", 1.0, "us.png")
    assert float(inside["nodule_area_mm2"]) == pytest.approx(150 * 0.01)
    mask[0:3, 0:3] = True  # a piece in the unlabelled margin outside the calibrated region
    outside = batch.csv_row(frame, Segmentation(mask.astype(np.float32), mask, None, None), "m", 1.0, "us.png")
    assert outside["nodule_area_mm2"] == "" and outside["longest_diameter_mm"] == "" and outside["nodule_area_px"] == "159"
