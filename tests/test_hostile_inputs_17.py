"""Issue 17's classes, with cases of our own: outputs that would land on inputs, paths trusted as they read, two
runs in one folder, numbers that poison, files that inflate, orientation, cells a spreadsheet runs, inputs that
attach to nothing, and the smaller items (warnings, the Ctrl-C summary, long names, name clashes, DICOM bit depths,
a smaller frame in a clip, SIGTERM).

Each test writes its own hostile files and goes through the real command line (``cli.main``) where there is one.
"""
from __future__ import annotations

import csv
import json
import os
import signal
import struct
import subprocess
import sys
import unicodedata
import warnings
import zlib
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest
import torch
from pydicom.uid import DeflatedExplicitVRLittleEndian

from thyroid_studio import cli
from thyroid_studio.engine import geometry
from thyroid_studio.engine.datasets.check import check
from thyroid_studio.engine.datasets.layouts import DatasetError, read_mask
from thyroid_studio.engine.datasets.writer import DatasetWriter
from thyroid_studio.engine.findings.fields import LabelsError, read_labels
from thyroid_studio.engine.io.frames import FrameReadError, read_frame, read_frames
from thyroid_studio.engine.labels.worklist import Worklist
from thyroid_studio.engine.models.architectures import build_model
from thyroid_studio.engine.models.checkpoint import ModelMeta, read_meta, save_checkpoint
from thyroid_studio.engine.models.prompt_checkpoint import PromptModelMeta, save_prompt_model

from cli_files import image
from dataset_files import write_nodule_pairs
from frame_files import us_region, write_dicom
from prompt_models import tiny_litemedsam

REPO = Path(__file__).resolve().parents[1]
# A process's own peak resident memory: VmHWM starts again at exec (getrusage's maxrss keeps the forking parent's).
PEAK = "[int(line.split()[1]) * 1024 for line in open('/proc/self/status') if line.startswith('VmHWM')][0]"


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    return {
        "unet": save_checkpoint(folder / "unet.pt", build_model("unet", 2), ModelMeta("unet", 2, input_size=(32, 32))),
        "prompt": save_prompt_model(folder / "prompt.pt", tiny_litemedsam(), PromptModelMeta(name="tiny")),
    }


def run(*args: str | Path) -> int:
    return cli.main([str(a) for a in args])


def segment(models, *args) -> int:
    return run("segment", *args, "--model", models["unet"], "--device", "cpu")


def errors(capsys) -> list[str]:
    """stderr's lines without progress bars."""
    text = capsys.readouterr().err.replace("\r", "\n")
    return [line for line in text.splitlines() if line.strip() and "frame/s]" not in line and "box/s]" not in line
            and "it/s]" not in line and not line.startswith(("segment:", "prompt:"))]


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


# ---------------------------------------------------------------- 1. an output never lands on an input


def test_a_link_in_out_that_points_at_an_input_is_never_written_through(tmp_path, models, capsys):
    real = image(tmp_path / "real" / "scan.png")
    before = real.read_bytes()
    out = tmp_path / "out"
    out.mkdir()
    (out / "scan.png").symlink_to(real)  # left there by a user; the input is given by its real path
    assert segment(models, real, "--out", out) == 1
    [line] = [line for line in errors(capsys) if line.startswith("skipped")]
    assert line == (f"skipped scan.png: its mask scan.png would replace the input {real}; rename one of them or "
                    "segment them into different --out folders")
    assert real.read_bytes() == before and (out / "scan.png").is_symlink()


def test_a_linked_input_inside_out_stops_the_run(tmp_path, models, capsys):
    real = image(tmp_path / "real" / "a.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").symlink_to(real)
    assert segment(models, out / "a.png", "--out", out) == 2
    assert errors(capsys) == [f"thyroid-studio segment: --out {out} is the folder of the input {out / 'a.png'}; "
                              "choose a folder outside the inputs"]
    assert (out / "a.png").is_symlink() and read_frame(real).pixels.shape == (24, 32)


def test_segment_into_the_mask_folder_of_a_dataset_is_refused(tmp_path, models, capsys):
    dataset = write_nodule_pairs(tmp_path / "ds", ["0001", "0002"], seed=1)
    mask = (dataset / "mask" / "0001.png").read_bytes()
    source = image(tmp_path / "in" / "0001.png")
    assert segment(models, source, "--out", dataset / "mask") == 2
    [line] = errors(capsys)
    assert line.startswith(f"thyroid-studio segment: --out {dataset / 'mask'} lies inside the dataset {dataset}")
    assert (dataset / "mask" / "0001.png").read_bytes() == mask


def test_a_folder_where_the_summary_goes_stops_the_run_before_any_mask(tmp_path, models, capsys):
    out = tmp_path / "out"
    (out / "segmentation.csv").mkdir(parents=True)
    assert segment(models, image(tmp_path / "in" / "a.png"), "--out", out) == 2
    assert errors(capsys) == [f"thyroid-studio segment: the summary {out / 'segmentation.csv'} is a folder"]
    assert sorted(p.name for p in out.iterdir()) == ["segmentation.csv"]


def test_prompt_never_replaces_an_input_named_in_its_table(tmp_path, models, capsys):
    real = image(tmp_path / "real" / "a.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").symlink_to(real)
    boxes = tmp_path / "boxes.csv"
    boxes.write_text(f"file,x0,y0,x1,y1\n{out / 'a.png'},2,2,20,20\n")
    assert run("prompt", "--boxes", boxes, "--out", out, "--model", models["prompt"]) == 2
    assert errors(capsys) == [f"thyroid-studio prompt: --out {out} is the folder of the input {out / 'a.png'}; "
                              "choose a folder outside the inputs"]
    assert (out / "a.png").is_symlink()


def test_report_and_evaluate_never_write_into_a_dataset(tmp_path, models, capsys):
    dataset = write_nodule_pairs(tmp_path / "ds", ["1", "2"], seed=2)
    assert run("report", dataset / "image" / "1.png", "--out", dataset / "image" / "reports", "--model", models["unet"],
               "--device", "cpu") == 2
    assert f"lies inside the dataset {dataset}" in errors(capsys)[0]
    (tmp_path / "predicted").mkdir()
    assert run("evaluate", "--predictions", tmp_path / "predicted", "--images", dataset / "image", "--masks",
               dataset / "mask", "--json", dataset / "mask" / "scores.json") == 2
    assert errors(capsys) == [f"thyroid-studio evaluate: --json {dataset / 'mask' / 'scores.json'} lies inside the "
                              f"input folder {dataset / 'mask'}"]
    assert sorted(p.name for p in (dataset / "mask").iterdir()) == ["1.png", "2.png"]


def test_finetune_and_train_never_write_into_their_datasets(tmp_path, models, capsys):
    pairs = write_nodule_pairs(tmp_path / "pairs", [str(i) for i in range(1, 9)], seed=3, shape=(48, 64))
    assert run("finetune", "--from", models["unet"], "--nodules", pairs, "--out", pairs / "image" / "new.pt",
               "--device", "cpu") == 2
    [line] = errors(capsys)
    assert line.startswith(f"thyroid-studio finetune: --out {pairs / 'image' / 'new.pt'} lies inside the input folder")
    assert run("train", "--arch", "unet", "--nodules", pairs, "--out", pairs / "run", "--epochs", "1", "--size", "32",
               "--width", "2", "--device", "cpu") == 2
    assert errors(capsys) == [f"thyroid-studio train: --out {pairs / 'run'} is inside the input folder {pairs}; "
                              "choose a folder outside the inputs"]
    assert sorted(p.name for p in pairs.iterdir()) == ["image", "mask"]


def test_dataset_add_into_a_folder_inside_its_source_is_refused(tmp_path, capsys):
    source = write_nodule_pairs(tmp_path / "src", ["1", "2"], seed=4)
    assert run("dataset", "add", source / "image" / "ds", source) == 2
    [line] = errors(capsys)
    assert line.startswith(f"thyroid-studio dataset add: DATASET {source / 'image' / 'ds'} is inside the input folder")
    assert not (source / "image" / "ds").exists()


def test_the_app_exports_no_report_onto_a_dataset(tmp_path):
    """The app's File > Export report goes through the same plan (no dialog: the rule itself)."""
    from thyroid_studio.engine.io.outputs import OutputError, OutputPlan

    dataset = write_nodule_pairs(tmp_path / "ds", ["1"], seed=5)
    with pytest.raises(OutputError, match=f"The report {dataset / 'mask' / 'r.pdf'} lies inside the dataset"):
        OutputPlan([tmp_path / "frame.png"]).check(dataset / "mask" / "r.pdf", "The report")


# ---------------------------------------------------------------- 2. paths resolved before they are trusted


@pytest.fixture
def kept(tmp_path) -> Path:
    root = tmp_path / "kept"
    writer = DatasetWriter(root)
    writer.add(np.full((12, 16), 80, np.uint8), np.eye(12, 16, dtype=bool), source="a.png")
    return root


def test_a_journal_through_a_linked_mask_folder_replaces_nothing_outside(tmp_path, kept, capsys):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.png").write_text("mine")
    (kept / "trainval-mask" / "away").symlink_to(outside)
    (kept / "history").mkdir()
    (kept / "history" / "0000.r1.png").write_bytes(b"an interrupted replace's copy")  # undoing moves it onto "previous"
    journal = {"op": "replace", "key": "0000", "mask": "trainval-mask/0000.png",
               "previous": "trainval-mask/away/precious.png", "history": "history/0000.r1.png"}
    (kept / ".transaction.json").write_text(json.dumps(journal))
    assert run("dataset", "check", "--repair", kept) == 1
    assert "leads outside the dataset through a link" in capsys.readouterr().out
    assert (outside / "precious.png").read_text() == "mine"


@pytest.mark.parametrize("name", [".dataset.lock", "records.jsonl", "history"])
def test_the_writer_never_opens_its_own_files_through_a_link(tmp_path, kept, name):
    """The records would be appended to through the link, the history folder written in; the lock was a traceback."""
    target, victim = kept / name, tmp_path / "victim"
    if name == "history":
        victim.mkdir()
    else:  # the same bytes as the dataset's own file, so that only a write through the link can show
        victim.write_bytes(target.read_bytes() if name == "records.jsonl" else b"precious\n")
        target.unlink()
    target.symlink_to(victim)
    before = victim.read_bytes() if name != "history" else b""
    with pytest.raises(DatasetError, match=f"{target} is a link .* never writes through a link"):
        DatasetWriter(kept).add(np.full((12, 16), 99, np.uint8), np.eye(12, 16, dtype=bool), source="b.png")
    assert check(kept) == [f"{target} is a link (to {victim}); the dataset writer never writes through a link: "
                           "replace it with the file or folder itself"]
    assert (victim.read_bytes() if name != "history" else b"") == before
    assert name != "history" or list(victim.iterdir()) == []


def test_a_record_whose_folder_is_a_link_elsewhere_is_refused(tmp_path, kept):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (kept / "trainval-image" / "away").symlink_to(elsewhere)
    records = kept / "records.jsonl"
    last = json.loads(records.read_text().splitlines()[-1])
    crafted = {**last, "key": "0001", "image": "trainval-image/away/x.png"}
    records.write_text(records.read_text() + json.dumps(crafted) + "\n")
    with pytest.raises(DatasetError, match="leads outside the dataset through a link"):
        DatasetWriter(kept)


def test_a_batch_csv_naming_a_mask_outside_its_folder_is_not_read(tmp_path):
    source = image(tmp_path / "in" / "a.png")
    secret = image(tmp_path / "secret.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "segmentation.csv").write_text(f"file,frame,mask,model\n{source},0,../secret.png,m\n")
    worklist = Worklist()
    opened, problems = worklist.load_batch_results(out / "segmentation.csv")
    assert problems == [f"{out / 'segmentation.csv'}, line 2: its mask '../secret.png' lies outside {out}"]
    assert secret.is_file() and opened == []


# ---------------------------------------------------------------- 3. one run per output folder


def test_a_second_run_into_a_folder_another_run_holds_is_refused(tmp_path, models, capsys):
    from thyroid_studio.engine.io.outputs import folder_lock

    source = image(tmp_path / "in" / "a.png")
    out = tmp_path / "out"
    out.mkdir()
    boxes = tmp_path / "boxes.csv"
    boxes.write_text(f"file,x0,y0,x1,y1\n{source},2,2,20,20\n")
    busy = f"{out} is being written by another run; wait for it to finish or choose another folder"
    with folder_lock(out):  # the first run, still going
        assert segment(models, source, "--out", out) == 2
        assert errors(capsys) == [f"thyroid-studio segment: {busy}"]
        assert run("prompt", "--boxes", boxes, "--out", out, "--model", models["prompt"]) == 2
        assert errors(capsys) == [f"thyroid-studio prompt: {busy}"]
        assert run("report", source, "--out", out, "--model", models["unet"], "--device", "cpu") == 2
        assert errors(capsys) == [f"thyroid-studio report: {busy}"]
    assert list(out.iterdir()) == []
    assert segment(models, source, "--out", out) == 0  # once it has ended
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "segmentation.csv"]


def test_two_segment_processes_into_one_folder_never_mix_their_csvs(tmp_path, models):
    for i in range(6):
        image(tmp_path / "in" / f"{i}.png", level=40 + 20 * i)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "thyroid_studio", "segment", str(tmp_path / "in"), "--out", str(out), "--model",
               str(models["unet"]), "--device", "cpu", "--batch-size", "1"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    both = [subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in both]
    codes = sorted(code for code, _ in results)
    assert codes in ([0, 0], [0, 2]), results  # one after the other, or the second refused with one line
    table = rows(out / "segmentation.csv")
    assert sorted(r["mask"] for r in table) == [f"{i}.png" for i in range(6)]
    assert b"\0" not in (out / "segmentation.csv").read_bytes()


# ---------------------------------------------------------------- 4. numbers checked where they enter


def float_tiff(path: Path, bad: float) -> Path:
    pixels = np.random.default_rng(7).random((24, 32), dtype=np.float32)
    pixels[5, 5] = bad
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), pixels)
    return path


def test_nan_and_infinite_pixels_are_refused_not_segmented(tmp_path, models, capsys):
    folder = tmp_path / "in"
    float_tiff(folder / "nan.tif", np.nan), float_tiff(folder / "inf.tif", np.inf)
    good = image(folder / "good.png")
    out = tmp_path / "out"
    assert segment(models, folder, "--out", out) == 1
    skipped = sorted(line for line in errors(capsys) if line.startswith("skipped"))
    assert skipped == ["skipped inf.tif: its pixels hold NaN or infinite values (no image to measure)",
                       "skipped nan.tif: its pixels hold NaN or infinite values (no image to measure)"]
    assert [r["file"] for r in rows(out / "segmentation.csv")] == [str(good)]


def test_two_nan_frames_are_not_one_frame_to_the_dataset(tmp_path, capsys):
    source = tmp_path / "src"
    (source / "mask").mkdir(parents=True)
    for key in ("1", "2"):
        float_tiff(source / "image" / f"{key}.tif", np.nan)
        cv2.imwrite(str(source / "mask" / f"{key}.png"), np.zeros((24, 32), np.uint8))
    assert run("dataset", "add", tmp_path / "ds", source) == 1
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 2 and all("its pixels hold NaN or infinite values" in line for line in lines)
    assert "already in the dataset" not in captured.out and "added 0, skipped 0 already there, 2 failed" in captured.out


@pytest.mark.parametrize(("attributes", "message"), [
    ({"PixelSpacing": ["nan", "nan"]}, "its PixelSpacing gives (nan, nan) mm per pixel"),
    ({"PixelSpacing": [1e30, 1e30]}, "its PixelSpacing gives (1e+30, 1e+30) mm per pixel"),
    ({"SequenceOfUltrasoundRegions": "inf-delta"},
     "its ultrasound calibration region (0, 0)-(29, 19) gives (inf, 0.1)"),
])
def test_absurd_spacing_gives_no_millimetres_and_one_warning(tmp_path, models, capsys, attributes, message):
    if attributes.get("SequenceOfUltrasoundRegions") == "inf-delta":
        attributes = {"SequenceOfUltrasoundRegions": [us_region(29, 19, 0.01, float("inf"))]}
    pixels = np.full((20, 30), 90, np.uint8)
    pixels[5:12, 8:20] = 20
    (tmp_path / "in").mkdir()
    path = write_dicom(tmp_path / "in" / "us.dcm", pixels, **attributes)
    out = tmp_path / "out"
    assert segment(models, path, "--out", out, "--threshold", "0.01") == 0
    warnings_seen = [line for line in errors(capsys) if line.startswith("warning:")]
    assert len(warnings_seen) == 1 and message in warnings_seen[0] and warnings_seen[0].endswith("no millimetres")
    [row] = rows(out / "segmentation.csv")
    assert row["nodule_area_mm2"] == "" and row["longest_diameter_mm"] == "" and int(row["nodule_area_px"]) > 0
    assert read_frame(path).calibration is None


@pytest.mark.parametrize(("keyword", "value"), [("RescaleSlope", "nan"), ("RescaleSlope", "0"),
                                                ("RescaleIntercept", "inf")])
def test_a_dicom_rescale_that_is_not_a_number_is_refused(tmp_path, keyword, value):
    path = write_dicom(tmp_path / "r.dcm", np.arange(64, dtype=np.uint16).reshape(8, 8), **{keyword: value})
    with pytest.raises(FrameReadError, match=f"^r.dcm: DICOM {keyword} {value} is not a finite"):
        read_frame(path)


def test_pixel_measurements_never_depend_on_the_spacing():
    mask = np.zeros((60, 80), bool)
    cv2.ellipse(mask.view(np.uint8), (40, 30), (25, 9), 30, 0, 360, 1, -1)
    plain = geometry.measure(mask)
    for spacing in ((0.001, 0.001), (0.01, 0.5), (5.0, 0.02)):
        measured = geometry.measure(mask, spacing)
        assert (measured.longest_px, measured.perpendicular_px) == (plain.longest_px, plain.perpendicular_px)
        assert measured.area_px == plain.area_px and measured.bbox == plain.bbox


def test_a_record_with_a_nan_spacing_is_refused(kept):
    records = kept / "records.jsonl"
    lines = records.read_text().splitlines()
    lines[-1] = json.dumps({**json.loads(lines[-1]), "spacing_mm": [float("nan"), 0.1]})
    records.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match="not a valid record .*spacing_mm gives \\(nan, 0.1\\) mm per pixel"):
        DatasetWriter(kept)


def test_a_checkpoint_claiming_a_nan_dice_shows_none(tmp_path, models, capsys, monkeypatch):
    payload = torch.load(models["unet"], weights_only=True)
    payload["meta"]["metrics"] = {"nodule": {"dice": float("nan")}}
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    torch.save(payload, shipped / "odd.pt")
    assert read_meta(shipped / "odd.pt").validation_dice is None
    monkeypatch.setenv("THYROID_STUDIO_MODELS", str(shipped))
    monkeypatch.setenv("THYROID_STUDIO_HOME", str(tmp_path / "home"))
    run("models")
    assert "nan" not in capsys.readouterr().out


# ---------------------------------------------------------------- 5. files that inflate; memory


def deflated(path: Path, pixels: np.ndarray, private_bytes: int = 0) -> Path:
    write_dicom(path, pixels)
    ds = pydicom.dcmread(path)
    if private_bytes:
        ds.add_new(0x00091010, "OB", b"\0" * private_bytes)  # a private element of zeros: compresses 1000:1
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True)
    return path


def test_a_normal_deflated_dicom_is_read(tmp_path):
    pixels = np.random.default_rng(8).integers(0, 4096, (2, 40, 50), dtype=np.uint16)
    write_dicom(tmp_path / "plain.dcm", pixels, frames=2)
    ds = pydicom.dcmread(tmp_path / "plain.dcm")
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds.save_as(tmp_path / "deflated.dcm", enforce_file_format=True)
    plain = [f.pixels for f in read_frames(tmp_path / "plain.dcm")]
    got = [f.pixels for f in read_frames(tmp_path / "deflated.dcm")]
    assert len(got) == 2 and all(np.array_equal(a, b) for a, b in zip(plain, got))


def test_a_deflated_dicom_that_inflates_to_gigabytes_is_refused_in_little_memory(tmp_path):
    path = deflated(tmp_path / "bomb.dcm", np.zeros((16, 16), np.uint8), private_bytes=200 << 20)
    assert path.stat().st_size < 1 << 20  # 200 MB of zeros in well under a megabyte
    script = ("import json, sys\nfrom thyroid_studio.engine.io.frames import FrameReadError, read_frame\n"
              "try:\n    read_frame(sys.argv[1]); outcome = 'ok'\n"
              "except FrameReadError as exc:\n    outcome = str(exc)\n"
              f"print(json.dumps([outcome, {PEAK}]))")
    done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    outcome, peak = json.loads(done.stdout.splitlines()[-1])
    assert outcome.startswith("bomb.dcm: not a readable DICOM file (its Deflated data set inflates to more than 100 MB")
    assert peak < 600 << 20


def test_an_opencv_allocation_failure_is_one_line_and_the_batch_goes_on(tmp_path, models, capsys, monkeypatch):
    from thyroid_studio.engine import preprocessing

    first, second = image(tmp_path / "in" / "a.png"), image(tmp_path / "in" / "b.png", level=150)
    real_resize, calls = preprocessing.cv2.resize, []

    def failing_resize(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # restoring the first frame's probabilities
            raise cv2.error("OpenCV(4.x) matrix.cpp:0: error: (-4:Insufficient memory) Failed to allocate 400000000 "
                            "bytes in function 'OutOfMemoryError'\n")
        return real_resize(*args, **kwargs)

    monkeypatch.setattr(preprocessing.cv2, "resize", failing_resize)
    out = tmp_path / "out"
    assert segment(models, first, second, "--out", out, "--batch-size", "1") == 1
    assert [line for line in errors(capsys) if line.startswith("skipped")] == [
        "skipped a.png: its frame 0 could not be segmented (out of memory (OpenCV could not allocate a frame-sized "
        "buffer))"]
    assert [r["mask"] for r in rows(out / "segmentation.csv")] == ["b.png"]


def test_frames_in_flight_are_bounded_by_pixels_and_never_deadlock(tmp_path, models, monkeypatch):
    from thyroid_studio.engine.io import memory

    monkeypatch.setattr(memory, "READ_AHEAD_PIXELS", 1000)  # less than one 24 x 32 frame and a half
    for i in range(7):
        image(tmp_path / "in" / f"{i}.png", level=30 + 25 * i)
    out = tmp_path / "out"
    assert segment(models, tmp_path / "in", "--out", out, "--batch-size", "4") == 0
    assert len(rows(out / "segmentation.csv")) == 7


@pytest.mark.slow
def test_one_frame_at_the_cap_stays_under_the_memory_target(tmp_path, models):
    """The worst case: RGB, its ultrasound region all of the frame, a gland head, --overlay --gland, and a nodule
    over the whole frame (threshold 0.01), in a fresh process: peak resident memory under 1.5 GB."""
    from thyroid_studio.engine.io.memory import DEFAULT_MAX_PIXELS, MEMORY_TARGET_BYTES

    side = int(DEFAULT_MAX_PIXELS ** 0.5)
    pixels = np.zeros((side, side, 3), np.uint8)
    pixels[..., 0], pixels[..., 1], pixels[..., 2] = 120, 90, (np.arange(side) % 200)[None, :] + 30
    cv2.imwrite(str(tmp_path / "huge.png"), pixels)
    del pixels
    torch.manual_seed(0)
    trfe = save_checkpoint(tmp_path / "trfe.pt", build_model("trfe-a", 2), ModelMeta("trfe-a", 2, input_size=(32, 32)))
    script = f"import sys\nfrom thyroid_studio.cli import main\ncode = main(sys.argv[1:])\nprint(code, {PEAK})"
    done = subprocess.run([sys.executable, "-c", script, "segment", str(tmp_path / "huge.png"), "--out",
                           str(tmp_path / "out"), "--model", str(trfe), "--device", "cpu", "--overlay", "--gland",
                           "--threshold", "0.01"], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
    code, peak = map(int, done.stdout.split()[-2:])
    assert code == 0 and peak < MEMORY_TARGET_BYTES, done.stderr[-2000:]
    assert int(rows(tmp_path / "out" / "segmentation.csv")[0]["nodule_area_px"]) > 0.9 * side * side


# ---------------------------------------------------------------- 6. orientation


def with_exif(jpeg: bytes, orientation: int) -> bytes:
    entry = struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0)  # Orientation, SHORT, 1 value
    tiff = b"MM" + struct.pack(">HI", 42, 8) + struct.pack(">H", 1) + entry
    payload = b"Exif\0\0" + tiff + struct.pack(">I", 0)
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def png_with_exif(png: bytes, orientation: int) -> bytes:
    entry = struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0)
    tiff = b"II" + struct.pack("<HI", 42, 8) + struct.pack("<H", 1) + entry
    body = tiff + struct.pack("<I", 0)
    chunk = struct.pack(">I", len(body)) + b"eXIf" + body + struct.pack(">I", zlib.crc32(b"eXIf" + body))
    return png[:33] + chunk + png[33:]


def stored_frame() -> np.ndarray:
    pixels = np.full((36, 56), 90, np.uint8)
    pixels[:6, :12] = 250  # a bright corner: shows where "top left" went
    return pixels


@pytest.mark.parametrize(("kind", "orientation", "shown"), [("jpg", 8, (56, 36)), ("png", 6, (56, 36)),
                                                             ("jpg", 3, (36, 56))])
def test_exif_orientation_is_applied_to_the_frame_its_mask_and_the_dataset(tmp_path, models, kind, orientation, shown):
    pixels = stored_frame()
    if kind == "jpg":
        data = with_exif(cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 100])[1].tobytes(), orientation)
    else:
        data = png_with_exif(cv2.imencode(".png", pixels)[1].tobytes(), orientation)
    source = tmp_path / "src" / "image" / f"1.{kind}"
    source.parent.mkdir(parents=True)
    source.write_bytes(data)
    frame = read_frame(source)
    assert frame.pixels.shape == shown
    assert frame.pixels[-3, -3] > 200 if orientation == 3 else True  # 180 degrees: the bright corner is bottom right
    assert segment(models, source, "--out", tmp_path / "out") == 0
    assert read_mask(tmp_path / "out" / "1.png").shape == shown
    (tmp_path / "src" / "mask").mkdir()
    cv2.imwrite(str(tmp_path / "src" / "mask" / "1.png"), np.zeros(shown, np.uint8))
    assert run("dataset", "add", tmp_path / "ds", tmp_path / "src") == 0
    [stored] = (tmp_path / "ds" / "trainval-image").iterdir()
    assert stored.suffix == ".png" and cv2.imread(str(stored), cv2.IMREAD_UNCHANGED).shape == shown
    assert check(tmp_path / "ds") == []


# ---------------------------------------------------------------- 7. cells a spreadsheet would run


FORMULA_NAMES = ["@SUM(1+1)", "-2+3", "+cmd", "=1+1"]


def test_names_that_look_like_formulas_are_neutralised_and_read_back_by_prompt(tmp_path, models, monkeypatch):
    folder = tmp_path / "in"
    sources = [image(folder / f"{name}.png", level=60 + 30 * i) for i, name in enumerate(FORMULA_NAMES)]
    payload = torch.load(models["unet"], weights_only=True)
    payload["meta"]["name"] = "=cmd|' /C calc'!A0"
    torch.save(payload, tmp_path / "evil.pt")
    out = tmp_path / "out"
    monkeypatch.chdir(folder)  # the files given by their bare names: the CSV's file cells start with = + - @
    assert run("segment", "--out", out, "--model", tmp_path / "evil.pt", "--device", "cpu", "--threshold", "0.01",
               "--", *(p.name for p in sources)) == 0
    with open(out / "segmentation.csv", newline="", encoding="utf-8") as handle:
        cells = [cell for row in csv.reader(handle) for cell in row]
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "@") or (cell[:1] == "-" and not cell[1:2].isdigit())]
    assert "'=cmd|' /C calc'!A0" in cells
    assert run("prompt", "--boxes", out / "segmentation.csv", "--out", tmp_path / "prompted", "--model",
               models["prompt"], "--device", "cpu") == 0
    summary = rows(tmp_path / "prompted" / "prompt.csv")
    assert sorted(Path(r["file"].lstrip("'")).name for r in summary) == sorted(p.name for p in sources)
    assert all(r["file"][:1] not in "=+-@" for r in summary)
    worklist = Worklist()
    opened, problems = worklist.load_batch_results(out / "segmentation.csv")
    assert problems == [] and len(opened) == len(sources)


def test_a_carriage_return_in_a_name_survives_segment_and_prompt(tmp_path, models):
    source = image(tmp_path / "in" / "a\rb.png")
    out = tmp_path / "out"
    assert segment(models, source, "--out", out, "--threshold", "0.01") == 0
    assert [r["file"] for r in rows(out / "segmentation.csv")] == [str(source)]
    assert run("prompt", "--boxes", out / "segmentation.csv", "--out", tmp_path / "p", "--model", models["prompt"],
               "--device", "cpu") == 0
    assert [r["file"] for r in rows(tmp_path / "p" / "prompt.csv")] == [str(source)]


def test_labels_csv_cells_are_neutralised_and_kept(tmp_path):
    root = tmp_path / "ds"
    writer = DatasetWriter(root)
    (root / "labels.csv").write_text("id,tirads,notes\n0000,3,=HYPERLINK(\"http://x\")\n")
    writer.add(np.full((12, 16), 70, np.uint8), np.eye(12, 16, dtype=bool), source="a.png")
    text = (root / "labels.csv").read_text()
    assert "'=HYPERLINK" in text and "\n=" not in text and ",=" not in text
    writer.add(np.full((12, 16), 90, np.uint8), np.eye(12, 16, dtype=bool), source="b.png")
    assert "'=HYPERLINK" in (root / "labels.csv").read_text() and "''=" not in (root / "labels.csv").read_text()


# ---------------------------------------------------------------- 8. inputs that attach to nothing


def test_labels_whose_ids_miss_the_image_names_are_reported(tmp_path, capsys):
    source = write_nodule_pairs(tmp_path / "src", ["0010", "0011"], seed=9)
    (source / "labels.csv").write_text("id,tirads\n10,3\n0011,5\n")
    assert run("dataset", "add", tmp_path / "ds", source) == 1
    assert errors(capsys) == [
        f"thyroid-studio dataset add: {source / 'labels.csv'}: 1 of its ids name no image ('10'); their findings are "
        "not used (id '10' against the image '0010': ids must be the file names' stems exactly)"]
    assert read_labels(tmp_path / "ds" / "labels.csv") == {"0001": read_labels(source / "labels.csv")["0011"]}


@pytest.mark.parametrize(("text", "message"), [
    ("id,tirads,tirads\na,3,5\n", "the header names column 'tirads' twice (columns 2 and 3)"),
    ("id,tirads\na,3,solid\n", "line 2: has 3 fields; the header has 2"),
    ("id,tirads,composition\na,3\n", "line 2: has 2 fields; the header has 3"),
])
def test_a_malformed_labels_csv_is_one_error(tmp_path, text, message):
    (tmp_path / "labels.csv").write_text(text)
    with pytest.raises(LabelsError, match=message.replace("(", "\\(").replace(")", "\\)")):
        read_labels(tmp_path / "labels.csv")


def test_a_boxes_row_with_an_extra_field_is_reported_and_the_rest_go_on(tmp_path, models, capsys):
    source = image(tmp_path / "in" / "a.png")
    boxes = tmp_path / "boxes.csv"
    boxes.write_text(f"file,x0,y0,x1,y1\n{source},2,2,20,20,9\n{source},3,3,18,18\n")
    assert run("prompt", "--boxes", boxes, "--out", tmp_path / "out", "--model", models["prompt"]) == 1
    assert [line for line in errors(capsys) if line.startswith("skipped")] == [
        f"skipped line 2: {source}: has 6 fields; the header has 5"]
    assert [r["line"] for r in rows(tmp_path / "out" / "prompt.csv")] == ["3"]
    boxes.write_text(f"file,x0,y0,x1,y1,x0\n{source},2,2,20,20,1\n")
    assert run("prompt", "--boxes", boxes, "--out", tmp_path / "out2", "--model", models["prompt"]) == 2
    assert errors(capsys) == [f"thyroid-studio prompt: {boxes}: the header names column 'x0' twice (columns 2 and 6)"]


def test_evaluate_and_report_say_which_labels_attach_to_nothing(tmp_path, models, capsys):
    pairs = write_nodule_pairs(tmp_path / "pairs", ["1", "2"], seed=10, shape=(48, 64))
    labels = tmp_path / "labels.csv"
    labels.write_text("id,tirads\n1,3\n02,4a\n")
    assert run("evaluate", "--predictions", pairs / "mask", "--images", pairs / "image", "--masks", pairs / "mask",
               "--labels", labels) == 0
    expected = (f"{labels}: 1 of its ids name no frame ('02'); their findings are not used (id '02' against the frame "
                "'2': ids must be the file names' stems exactly)")
    assert expected in errors(capsys)
    assert run("report", pairs / "image", "--out", tmp_path / "r", "--model", models["unet"], "--labels", labels,
               "--device", "cpu") == 0
    assert f"thyroid-studio report: {expected}" in errors(capsys)


# ---------------------------------------------------------------- 9. the smaller items


def test_a_runtime_warning_is_one_line(tmp_path, models, capsys, monkeypatch):
    from thyroid_studio.engine.inference.segmenter import Segmenter

    original = Segmenter.segment

    def noisy(self, images):
        with np.errstate(divide="warn"):
            np.log(np.zeros(1))  # numpy's RuntimeWarning, as a NaN or a zero somewhere would give
        return original(self, images)

    monkeypatch.setattr(Segmenter, "segment", noisy)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert segment(models, image(tmp_path / "in" / "a.png"), image(tmp_path / "in" / "b.png"), "--out",
                       tmp_path / "out", "--batch-size", "1") == 0
    lines = errors(capsys)
    assert [line for line in lines if "warning:" in line] == [
        "thyroid-studio segment: warning: divide by zero encountered in log"]  # once, without the source line


def test_the_ctrl_c_summary_counts_the_files_reached(tmp_path, models, capsys, monkeypatch):
    from thyroid_studio.engine.inference.segmenter import Segmenter

    for stem in "abcd":
        image(tmp_path / "in" / f"{stem}.png")
    original, calls = Segmenter.segment, []

    def pressed(self, images):
        if not calls:
            signal.raise_signal(signal.SIGINT)
        calls.append(1)
        return original(self, images)

    monkeypatch.setattr(Segmenter, "segment", pressed)
    assert segment(models, tmp_path / "in", "--out", tmp_path / "out", "--batch-size", "1") == 130
    [summary] = [line for line in errors(capsys) if line.startswith("interrupted after")]
    assert summary.startswith("interrupted after 1 frames from 1 of 4 files")


def test_sigterm_stops_at_a_safe_point_like_the_first_ctrl_c(tmp_path, models, capsys, monkeypatch):
    from thyroid_studio.engine.inference.segmenter import Segmenter

    for stem in "abc":
        image(tmp_path / "in" / f"{stem}.png")
    original, calls = Segmenter.segment, []

    def terminated(self, images):
        if not calls:
            signal.raise_signal(signal.SIGTERM)
        calls.append(1)
        return original(self, images)

    monkeypatch.setattr(Segmenter, "segment", terminated)
    previous = signal.signal(signal.SIGTERM, lambda *_: None)  # without the fix the signal is ignored, not fatal
    out = tmp_path / "out"
    assert segment(models, tmp_path / "in", "--out", out, "--batch-size", "1") == 130
    lines = errors(capsys)
    assert lines[0] == ("thyroid-studio segment: terminated (SIGTERM): stopping after the current batch of frames "
                        "(Ctrl-C again to stop at once)")
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "segmentation.csv"]
    signal.signal(signal.SIGTERM, previous)


def test_sigterm_in_a_command_without_safe_points_leaves_no_temporary_file(tmp_path, models, monkeypatch, capsys):
    from thyroid_studio import report_pdf

    def killed(*args, **kwargs):
        signal.raise_signal(signal.SIGTERM)

    monkeypatch.setattr(report_pdf, "_draw", killed)
    previous = signal.signal(signal.SIGTERM, lambda *_: None)  # without the fix the signal is ignored, not fatal
    out = tmp_path / "out"
    try:
        assert run("report", image(tmp_path / "in" / "a.png"), "--out", out, "--model", models["unet"],
                   "--device", "cpu") == 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert "interrupted" in capsys.readouterr().err and list(out.iterdir()) == []


def test_a_name_of_250_bytes_is_written(tmp_path, models):
    stem = "n" * 246
    source = image(tmp_path / "in" / f"{stem}.png")
    assert len(source.name.encode()) == 250
    assert segment(models, source, "--out", tmp_path / "out") == 0
    assert (tmp_path / "out" / f"{stem}.png").is_file()


def test_names_clash_as_disks_see_them(tmp_path, models, capsys):
    folder = tmp_path / "in"
    image(folder / "STRASSE.png"), image(folder / "straße.png", level=150)
    assert segment(models, folder, "--out", tmp_path / "out") == 0  # no disk calls them one file
    nfc, nfd = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")
    twins = tmp_path / "twins"
    image(twins / f"{nfc}.png"), image(twins / f"{nfd}.png", level=150)
    assert segment(models, twins, "--out", tmp_path / "out2") == 1  # one file on macOS
    assert len([line for line in errors(capsys) if "would overwrite the mask of" in line]) == 1


@pytest.mark.parametrize(("bits_allocated", "bits_stored", "values"), [(8, 4, [0, 7, 15]), (1, 1, [0, 1])])
def test_dicom_frames_of_few_bits_are_rescaled(tmp_path, bits_allocated, bits_stored, values):
    pixels = np.array(values * 16, np.uint8)[: 8 * 4].reshape(4, 8)
    path = write_dicom(tmp_path / "bits.dcm", pixels)
    ds = pydicom.dcmread(path)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits_allocated, bits_stored, bits_stored - 1
    packed = np.packbits(pixels.reshape(-1), bitorder="little") if bits_allocated == 1 else pixels
    ds.PixelData = packed.tobytes()
    ds.save_as(path, enforce_file_format=True)
    frame = read_frame(path).pixels
    assert frame.min() == 0 and frame.max() == 255


def test_a_smaller_frame_inside_a_clip_is_not_stretched_silently(tmp_path, models, capsys):
    rng = np.random.default_rng(11)
    writer = cv2.VideoWriter(str(tmp_path / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48), isColor=False)
    for _ in range(4):
        writer.write(rng.integers(0, 255, (48, 64), dtype=np.uint8))
    writer.release()
    data = bytearray((tmp_path / "clip.avi").read_bytes())
    starts = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xD8]
    start, end = starts[2], data.find(b"\xff\xd9", starts[2]) + 2
    small = cv2.imencode(".jpg", np.full((24, 32), 200, np.uint8))[1].tobytes()  # half the size, same chunk length
    data[start:end] = small + b"\0" * (end - start - len(small))
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "mixed.avi").write_bytes(bytes(data))
    assert segment(models, folder, "--out", tmp_path / "out") == 1
    assert [line for line in errors(capsys) if line.startswith("skipped")] == [
        "skipped mixed.avi: frame 2 is coded at 32 x 24 pixels, unlike the frames before it; the decoder would stretch "
        "it to the clip's size (and its measurements with it)"]
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["mixed_f0000.png", "mixed_f0001.png"]

