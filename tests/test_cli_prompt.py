"""`thyroid-studio prompt`: good and bad rows, name clashes, multi-frame files, exit statuses."""
from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from thyroid_studio import cli
from thyroid_studio.engine.datasets.layouts import read_mask
from thyroid_studio.engine.inference.prompt_batch import prompt_boxes
from thyroid_studio.engine.inference.prompting import PromptSegmenter
from thyroid_studio.engine.models.prompt_checkpoint import PromptModelMeta, save_prompt_model

from prompt_models import BoxEcho, tiny_litemedsam


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A randomly initialised tiny LiteMedSAM file: its masks mean nothing, their names and sizes do."""
    return save_prompt_model(tmp_path_factory.mktemp("model") / "tiny.pt", tiny_litemedsam(), PromptModelMeta(name="tiny"))


@pytest.fixture
def frames(tmp_path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    pixels = np.full((90, 120), 100, np.uint8)
    pixels[-1, -1] = 0  # not constant, so BoxEcho sees it
    cv2.imwrite(str(folder / "a.png"), pixels)
    cv2.imwrite(str(folder / "b.png"), pixels[:60])
    writer = cv2.VideoWriter(str(folder / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (120, 90))
    for level in (60, 120, 180):
        frame = np.full((90, 120, 3), level, np.uint8)
        frame[0, :, :] = 0
        writer.write(frame)
    writer.release()
    return folder


def write_boxes(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def run(*args: str) -> int:
    return cli.main(["prompt", *map(str, args)])


def box_of(mask_path: Path) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(read_mask(mask_path))
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


def test_rows_good_and_bad(tmp_path, frames, tiny_model, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative paths in the CSV are relative to the current folder
    boxes = write_boxes(tmp_path / "boxes.csv", "file,x0,y0,x1,y1,frame,comment", [
        "in/a.png,10,20,60,70,,first box",
        "in/a.png,30,10,100,40,,second box on a.png",
        "in/b.png,5,5,50,30,0,",
        "in/clip.avi,20,20,80,60,2,",
        "in/missing.png,1,1,5,5,,",
        "in/a.png,ten,1,5,5,,",
        "in/a.png,200,10,300,40,,outside",
        "in/clip.avi,20,20,80,60,7,",
        "in/a.png,1,1,5,5,1.5,",
        ",1,1,5,5,,",
    ])
    out = tmp_path / "out"
    assert run("--boxes", boxes, "--out", out, "--model", tiny_model, "--device", "cpu") == 1
    skipped = [line for line in capsys.readouterr().err.splitlines() if line.startswith("skipped")]
    assert skipped == [
        "skipped line 6: missing.png: file not found",
        "skipped line 7: in/a.png: x0 'ten' is not a number",
        "skipped line 8: in/a.png: box (200.0, 10.0, 300.0, 40.0) is empty or outside the 120x90 frame "
        "(x1 > x0 and y1 > y0 needed)",
        "skipped line 9: clip.avi: frame 7 is out of range (the file has 3 frames)",
        "skipped line 10: in/a.png: frame '1.5' is not a whole number",
        "skipped line 11: no file given",
    ]
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "a_box2.png", "b.png", "clip_f0002.png", "prompt.csv"]
    assert set(np.unique(cv2.imread(str(out / "b.png"), cv2.IMREAD_UNCHANGED))) <= {0, 255}
    assert read_mask(out / "b.png").shape == (60, 120) and read_mask(out / "clip_f0002.png").shape == (90, 120)
    with open(out / "prompt.csv", newline="") as f:
        summary = list(csv.DictReader(f))
    assert [(r["line"], r["mask"]) for r in summary] == [
        ("2", "a.png"), ("3", "a_box2.png"), ("4", "b.png"), ("5", "clip_f0002.png")]
    assert summary[0]["area_px"] == str(int(read_mask(out / "a.png").sum()))


def test_masks_follow_the_boxes(tmp_path, frames, monkeypatch):
    """Through a network that answers each box with itself, every mask is its row's box on its frame."""
    monkeypatch.chdir(tmp_path)
    boxes = write_boxes(tmp_path / "boxes.csv", " File , X0,y0,x1,y1,frame", [
        "in/a.png,10,20,60,70,", "in/a.png,30,10,100,40,", "in/clip.avi,20,20,80,60,2"])
    report = prompt_boxes(boxes, tmp_path / "out", PromptSegmenter(BoxEcho(), device="cpu"))
    assert report.ok and report.masks == 3
    assert box_of(tmp_path / "out" / "a.png") == pytest.approx((10, 20, 60, 70), abs=1)
    assert box_of(tmp_path / "out" / "a_box2.png") == pytest.approx((30, 10, 100, 40), abs=1)
    assert box_of(tmp_path / "out" / "clip_f0002.png") == pytest.approx((20, 20, 80, 60), abs=1)


def test_all_rows_good_is_status_0(tmp_path, frames, tiny_model):
    boxes = write_boxes(tmp_path / "boxes.csv", "file,x0,y0,x1,y1", [f"{frames / 'a.png'},10,20,60,70"])
    assert run("--boxes", boxes, "--out", tmp_path / "out", "--model", tiny_model, "--device", "cpu") == 0
    assert read_mask(tmp_path / "out" / "a.png").shape == (90, 120)


def test_usage_errors_are_status_2(tmp_path, frames, tiny_model, capsys):
    good = write_boxes(tmp_path / "boxes.csv", "file,x0,y0,x1,y1", [f"{frames / 'a.png'},1,1,9,9"])
    no_box = write_boxes(tmp_path / "nobox.csv", "file,x0,y0", [f"{frames / 'a.png'},1,1"])
    cases = [
        (["--boxes", tmp_path / "none.csv"], "none.csv: no such file"),
        (["--boxes", no_box], "no column x1, y1 in the header"),
        (["--boxes", good, "--model", tmp_path / "none.pt"], "no model"),
        (["--boxes", good, "--out", frames], "is the folder of the input"),
    ]
    for args, message in cases:
        full = [*args, "--model", tiny_model] if "--model" not in args else args
        full = [*full, "--out", tmp_path / "out"] if "--out" not in full else full
        assert run(*full, "--device", "cpu") == 2
        assert message in capsys.readouterr().err
    assert sorted(p.name for p in frames.iterdir()) == ["a.png", "b.png", "clip.avi"]  # nothing written among the inputs
