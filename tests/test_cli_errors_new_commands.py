"""Every bad input gets one clear line, for the commands and options added after issue 10's battery
(report, prompt, dataset, segment --gland/--tta/--refine, evaluate --tta/--labels, train --labels,
finetune --trainable), and for what a second battery found in the older ones: crafted prompt models
and findings heads, NaN weights, hostile labels.csv/boxes.csv, a pipe among the inputs, a cut
Matroska file, a dataset folder whose records or journal name files outside it, and Ctrl-C.

Each test writes its own hostile files and goes through the real command line (``cli.main``).
Exit statuses: 0 all done, 1 some inputs failed, 2 usage (nothing done), 130 Ctrl-C.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from thyroid_studio import cli
from thyroid_studio.engine.datasets.check import check
from thyroid_studio.engine.datasets.layouts import DatasetError
from thyroid_studio.engine.datasets.writer import DatasetWriter
from thyroid_studio.engine.findings.fields import FIELDS, LabelsError, read_labels
from thyroid_studio.engine.io import frames
from thyroid_studio.engine.io.frames import FrameReadError, read_frames
from thyroid_studio.engine.models import prompt_checkpoint
from thyroid_studio.engine.models.architectures import build_model
from thyroid_studio.engine.models.checkpoint import CheckpointError, ModelMeta, read_meta, save_checkpoint
from thyroid_studio.engine.models.prompt_checkpoint import PromptModelMeta, load_prompt_model, save_prompt_model

from cli_files import image, scored_folder
from dataset_files import write_nodule_pairs
from prompt_models import tiny_litemedsam


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """A tiny U-Net, a tiny TRFE-Net with findings heads, and a tiny LiteMedSAM (random weights)."""
    folder = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    vocabulary = {name: list(classes) for name, classes in FIELDS.items()}
    return {
        "unet": save_checkpoint(folder / "unet.pt", build_model("unet", 2), ModelMeta("unet", 2, input_size=(32, 32))),
        "trfe": save_checkpoint(folder / "trfe.pt", build_model("trfe-a", 2, 3, "plain", vocabulary),
                                ModelMeta("trfe-a", 2, findings=vocabulary, input_size=(32, 32))),
        "prompt": save_prompt_model(folder / "prompt.pt", tiny_litemedsam(), PromptModelMeta(name="tiny")),
    }


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Path:
    return write_nodule_pairs(tmp_path_factory.mktemp("pairs") / "data", [str(i) for i in range(1, 9)], seed=4, shape=(48, 64))


def crafted(source: Path, target: Path, change) -> Path:
    payload = torch.load(source, weights_only=True)
    change(payload)
    torch.save(payload, target)
    return target


def run(*args: str | Path) -> int:
    return cli.main([str(a) for a in args])


def errors(capsys) -> list[str]:
    """stderr's lines without progress bars."""
    text = capsys.readouterr().err.replace("\r", "\n")
    return [line for line in text.splitlines() if line.strip() and "frame/s]" not in line and "box/s]" not in line
            and "it/s]" not in line and not line.startswith(("segment:", "prompt:"))]


# ---------------------------------------------------------------- the command line itself


@pytest.mark.parametrize("command", list(cli.SUBCOMMANDS))
def test_a_failing_disk_is_one_line_for_every_subcommand(command, monkeypatch, capsys):
    """The top-level handler reports the machine's failures; it once called the report subcommand's module."""
    cli.build_parser()  # imports every subcommand's module, as a real run does
    module = cli._module(command)

    def full_disk(args):
        raise OSError(28, "No space left on device", "/somewhere/out.csv")

    monkeypatch.setattr(module, "run", full_disk)
    argv = {"segment": ["x.png", "--out", "o"], "evaluate": ["--predictions", "p"], "train": ["--nodules", "n", "--out", "o"],
            "finetune": ["--from", "f.pt", "--nodules", "n"], "report": ["x.png", "--out", "o"],
            "dataset": ["stats", "d"], "prompt": ["--boxes", "b.csv", "--out", "o"],
            "pacs": ["find", "http://localhost:8042/dicom-web"]}.get(command, [])
    assert cli.main([command, *argv]) == cli.EXIT_SOME_FAILED
    assert capsys.readouterr().err == (f"thyroid-studio {command}: stopped: OSError: No space left on device: "
                                       "/somewhere/out.csv\n")


# ---------------------------------------------------------------- checkpoints and prompt models


def test_nan_weights_are_refused_in_both_formats(tmp_path, models, capsys):
    def poison(payload):
        next(v for v in payload["state_dict"].values() if v.is_floating_point()).view(-1)[0] = float("nan")

    segmenter, prompter = crafted(models["unet"], tmp_path / "nan.pt", poison), crafted(models["prompt"], tmp_path / "nanp.pt", poison)
    assert run("segment", image(tmp_path / "in" / "a.png"), "--out", tmp_path / "out", "--model", segmenter, "--device", "cpu") == 2
    assert "holds NaN or infinite values" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match="holds NaN or infinite values"):
        load_prompt_model(prompter)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("change", [
    lambda findings: findings.__setitem__("tirads", list("abcdef")),  # the heads' sizes still fit the weights
    lambda findings: findings.__setitem__("nodularity", findings.pop("margins")),
    lambda findings: findings.__setitem__("tirads", ["3", "3", "4a", "4b", "4c", "5"]),
])
def test_findings_heads_outside_the_vocabulary_are_refused(tmp_path, models, capsys, change):
    path = crafted(models["trfe"], tmp_path / "findings.pt", lambda payload: change(payload["meta"]["findings"]))
    with pytest.raises(CheckpointError, match="'findings' must map finding names"):
        read_meta(path)
    assert run("segment", image(tmp_path / "a.png"), "--out", tmp_path / "out", "--model", path) == 2
    [line] = errors(capsys)
    assert line.startswith(f"thyroid-studio segment: {path}: metadata 'findings' must map finding names (tirads, ")


def config(name: str, value):
    return lambda payload: payload["meta"]["config"].__setitem__(name, value)


@pytest.mark.parametrize(("change", "message"), [
    (lambda payload: payload.__setitem__("meta", "a string"), "metadata is a str, not a mapping"),
    (lambda payload: payload["meta"].__setitem__("name", ["x"]), "metadata 'name' must be text"),
    (config("image_size", "abc"), "'image_size' must be a whole number from 32 to 2048"),
    (config("image_size", 1_000_000), "'image_size' must be a whole number from 32 to 2048"),
    (config("embed_dims", [-8, 16, 16, 32]), "'embed_dims' must be 4 whole numbers, each from 1 to 1024"),
    (config("depths", [10 ** 6, 1, 1, 1]), "'depths' must be 4 whole numbers, each from 1 to 16"),
    (config("decoder_mlp_dim", 10 ** 12), "'decoder_mlp_dim' must be a whole number from 1 to 16384"),
    (config("mlp_ratio", float("nan")), "'mlp_ratio' must be a number from 0.25 to 16"),
    (config("num_heads", [3, 3, 3, 3]), "metadata describes no LiteMedSAM network: 3 heads do not divide"),
])
def test_a_crafted_prompt_model_is_one_checkpoint_error(tmp_path, models, change, message):
    """These were tracebacks, a 60 s hang (a million blocks) and allocations of 20 GB to 128 TB."""
    path = crafted(models["prompt"], tmp_path / "p.pt", change)
    with pytest.raises(CheckpointError) as raised:
        load_prompt_model(path)
    assert str(raised.value).startswith(f"{path}: ") and message in str(raised.value)


def test_a_prompt_model_describing_a_huge_network_is_compared_before_it_is_built(tmp_path, models, monkeypatch):
    """Dimensions inside the bounds can still describe a network of gigabytes (1024 channels, 16 blocks a stage: 3 GB);
    it is built on the meta device (no memory) and its shapes compared with the file's weights, so the real network
    is never allocated. (Here a smaller one, 0.3 GB, so that a regression cannot hurt the machine.)"""
    huge = {"embed_dims": [512] * 4, "depths": [4] * 4, "num_heads": [8] * 4, "mlp_ratio": 8}
    path = crafted(models["prompt"], tmp_path / "huge.pt", lambda payload: payload["meta"]["config"].update(huge))
    devices = []

    class Recorded(prompt_checkpoint.LiteMedSAM):
        def __init__(self, config):
            super().__init__(config)
            devices.append(next(self.parameters()).device.type)

    monkeypatch.setattr(prompt_checkpoint, "LiteMedSAM", Recorded)
    with pytest.raises(CheckpointError, match="weights do not match the network its metadata describes: missing"):
        load_prompt_model(path)
    assert devices == ["meta"]
    load_prompt_model(models["prompt"])
    assert devices == ["meta", "meta", "cpu"]  # a good file: checked on meta, then built for real


def test_a_weight_viewed_as_billions_of_values_is_refused_without_allocating_them(tmp_path, models, monkeypatch, capsys):
    """One stored number expanded to 40 billion: checking it for NaN, or converting it, would allocate 160 GB."""
    def bomb(payload):
        payload["state_dict"]["bomb"] = torch.zeros(1).expand(200_000, 200_000)

    segmenter = crafted(models["unet"], tmp_path / "bomb.pt", bomb)
    with pytest.raises(CheckpointError, match="weight 'bomb' claims more values than the file stores"):
        load_prompt_model(crafted(models["prompt"], tmp_path / "bombp.pt", bomb))
    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    shutil.copy(segmenter, home / "models" / "bomb.pt")
    monkeypatch.setenv("THYROID_STUDIO_HOME", str(home))
    assert run("models") == 1  # the models list (and the app's dialog) skips it with a line
    assert f"skipped {home / 'models' / 'bomb.pt'}: weight 'bomb' claims more values than the file stores" in capsys.readouterr().err


def test_prompt_command_refuses_a_crafted_prompt_model_before_any_output(tmp_path, models, capsys):
    path = crafted(models["prompt"], tmp_path / "p.pt", lambda payload: payload.__setitem__("meta", "a string"))
    boxes = tmp_path / "boxes.csv"
    boxes.write_text(f"file,x0,y0,x1,y1\n{image(tmp_path / 'in' / 'a.png')},2,2,20,20\n")
    assert run("prompt", "--boxes", boxes, "--out", tmp_path / "out", "--model", path) == 2
    assert errors(capsys) == [f"thyroid-studio prompt: {path}: metadata is a str, not a mapping"]
    assert not (tmp_path / "out").exists()


def test_models_lists_the_shipped_ones_without_calling_the_prompt_model_bad(tmp_path, models, monkeypatch, capsys):
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    shutil.copy(models["unet"], shipped / "good.pt")
    shutil.copy(models["prompt"], shipped / "litemedsam.pt")
    (shipped / "defaults.json").write_text(json.dumps({"trfe": "good.pt", "unet": "good.pt"}))
    (tmp_path / "home" / "models" / "folder.pt").mkdir(parents=True)
    monkeypatch.setenv("THYROID_STUDIO_MODELS", str(shipped))
    monkeypatch.setenv("THYROID_STUDIO_HOME", str(tmp_path / "home"))
    assert run("models") == 1
    captured = capsys.readouterr()
    assert captured.err == (f"thyroid-studio models: skipped {tmp_path / 'home' / 'models' / 'folder.pt'}: "
                            "is a folder, not a checkpoint file\n")
    (tmp_path / "home" / "models" / "folder.pt").rmdir()
    assert run("models") == 0 and capsys.readouterr().err == ""


# ---------------------------------------------------------------- labels.csv and boxes.csv


@pytest.mark.parametrize(("text", "message"), [
    ("id,tirads,notes\na,3," + "x" * 200_000 + "\n", "line 2: not a readable CSV (field larger than field limit"),
    ('id,tirads\n"a,3\nb,4a\n', "line 2: not a readable CSV (unexpected end of data)"),
    ("id,tirads\na,3\nb,4a\na,5\n", "line 4: id 'a' is also on line 2"),
    ("id,tirad\na,3\n", "column 'tirad' is not a finding; did you mean 'tirads'?"),
    ("id,TIRADS\na,3\n", "column 'TIRADS' is not a finding; did you mean 'tirads'?"),
    ("id,sex\na,F\n", "no findings column; expected id,tirads,"),
])
def test_a_hostile_labels_csv_is_one_labels_error(tmp_path, text, message):
    path = tmp_path / "labels.csv"
    path.write_text(text)
    with pytest.raises(LabelsError) as raised:
        read_labels(path)
    assert str(raised.value).startswith(str(path)) and message in str(raised.value)


def test_an_oversized_labels_csv_is_refused_before_it_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr("thyroid_studio.engine.findings.fields.MAX_LABELS_BYTES", 1000)
    path = tmp_path / "labels.csv"
    path.write_text("id,tirads\n" + "".join(f"{i},3\n" for i in range(500)))
    with pytest.raises(LabelsError, match="a labels.csv is read whole and may hold at most 0 MB"):
        read_labels(path)


@pytest.fixture
def huge_field_labels(tmp_path) -> Path:
    path = tmp_path / "bad" / "labels.csv"
    path.parent.mkdir()
    path.write_text("id,tirads,notes\n1,3," + "x" * 200_000 + "\n")
    return path


def test_every_command_that_reads_labels_says_what_is_wrong_with_them(tmp_path, pairs, models, huge_field_labels, capsys):
    """These were tracebacks (csv.Error) in evaluate, report, train and dataset add."""
    expected = f"{huge_field_labels}, line 2: not a readable CSV (field larger than field limit (131072))"
    masks = pairs / "mask"
    assert run("evaluate", "--predictions", masks, "--images", pairs / "image", "--masks", masks, "--labels", huge_field_labels) == 2
    assert errors(capsys) == [f"thyroid-studio evaluate: {expected}"]
    assert run("report", pairs / "image" / "1.png", "--out", tmp_path / "r", "--model", models["unet"], "--labels", huge_field_labels) == 2
    assert errors(capsys) == [f"thyroid-studio report: {expected}"]
    assert run("train", "--arch", "unet", "--nodules", pairs, "--labels", huge_field_labels, "--out", tmp_path / "run",
               "--epochs", "1", "--size", "32", "--width", "2", "--device", "cpu") == 2
    assert errors(capsys) == [f"thyroid-studio train: {expected}"]
    source = tmp_path / "source"
    shutil.copytree(pairs, source)
    shutil.copy(huge_field_labels, source / "labels.csv")
    assert run("dataset", "add", tmp_path / "dataset", source) == 1  # added, without findings
    assert errors(capsys) == [f"thyroid-studio dataset add: {source / 'labels.csv'}, line 2: not a readable CSV "
                              "(field larger than field limit (131072)); adding without findings"]
    assert not (tmp_path / "r").exists() and not (tmp_path / "run").exists()


def test_train_refuses_labels_that_name_no_frame_before_creating_the_run(tmp_path, pairs, capsys):
    labels = tmp_path / "labels.csv"
    labels.write_text("id,tirads\nzz1,3\nzz2,5\n")
    assert run("train", "--arch", "unet", "--nodules", pairs, "--labels", labels, "--out", tmp_path / "run",
               "--epochs", "1", "--size", "32", "--width", "2", "--device", "cpu") == 2
    assert errors(capsys) == [f"thyroid-studio train: {labels}: none of its 2 ids names a frame of --nodules (ids like "
                              "'zz1', frames like '1'); the findings heads would learn nothing"]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("text", "message"), [
    ("file,x0,y0,x1,y1,notes\na.png,1,1,5,5," + "x" * 200_000 + "\n", "line 2: not a readable CSV (field larger than"),
    (None, "a boxes table is read whole and may hold at most 0 MB"),
])
def test_a_hostile_boxes_csv_is_one_usage_error(tmp_path, models, capsys, monkeypatch, text, message):
    boxes = tmp_path / "boxes.csv"
    if text is None:
        monkeypatch.setattr("thyroid_studio.engine.inference.prompt_batch.MAX_TABLE_BYTES", 100)
        text = "file,x0,y0,x1,y1\n" + "a.png,1,1,5,5\n" * 20
    boxes.write_text(text)
    assert run("prompt", "--boxes", boxes, "--out", tmp_path / "out", "--model", models["prompt"]) == 2
    [line] = errors(capsys)
    assert line.startswith(f"thyroid-studio prompt: {boxes}") and message in line
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- inputs: a pipe, a cut Matroska file, odd names


@pytest.mark.parametrize("value", ["abc", "0", "-5"])
def test_a_bad_pixel_cap_stops_the_command_once(tmp_path, models, monkeypatch, capsys, value):
    monkeypatch.setenv("THYROID_STUDIO_MAX_PIXELS", value)
    assert run("segment", image(tmp_path / "in" / "a.png"), image(tmp_path / "in" / "b.png"), "--out", tmp_path / "out",
               "--model", models["unet"]) == 2
    assert errors(capsys) == [f"thyroid-studio segment: THYROID_STUDIO_MAX_PIXELS={value!r} is not a positive whole "
                              "number of pixels"]


@pytest.mark.slow
def test_a_file_name_that_is_not_utf8_goes_through_segment_and_prompt(tmp_path, models):
    """A file name is bytes; Python holds the undecodable ones as surrogates, which a strict UTF-8 CSV refused."""
    name = os.fsdecode(b"scan-\xe9t\xe9.png")  # Latin-1, as an old scanner export names it
    source = tmp_path / "in" / name
    source.parent.mkdir()
    pixels = np.full((48, 64), 90, np.uint8)
    source.write_bytes(cv2.imencode(".png", pixels)[1].tobytes())
    script = ("import sys; from thyroid_studio import cli; sys.exit(cli.main(sys.argv[1:]))")
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-c", script, "segment", source, "--out", out, "--model", models["unet"]],
                          capture_output=True, cwd=Path(__file__).resolve().parents[1], timeout=120)
    assert done.returncode == 0, done.stderr
    table = (out / "segmentation.csv").read_bytes()
    assert os.fsencode(source) in table  # the file's own bytes: the row names the file
    boxes = tmp_path / "boxes.csv"
    boxes.write_bytes(b"file,x0,y0,x1,y1\n" + os.fsencode(source) + b",2,2,30,30\n")
    done = subprocess.run([sys.executable, "-c", script, "prompt", "--boxes", boxes, "--out", tmp_path / "masks",
                           "--model", models["prompt"]], capture_output=True, cwd=Path(__file__).resolve().parents[1], timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "masks" / f"{Path(name).stem}.png").is_file()
    assert os.fsencode(source) in (tmp_path / "masks" / "prompt.csv").read_bytes()


@pytest.fixture
def alarm():
    """Fail instead of hanging the test run (a pipe's reader blocks until a writer opens it)."""
    signal.signal(signal.SIGALRM, lambda *_: pytest.fail("blocked on a pipe"))
    signal.alarm(20)
    yield
    signal.alarm(0)


def test_a_pipe_among_the_inputs_is_skipped_not_waited_for(tmp_path, models, capsys, alarm):
    folder = tmp_path / "in"
    image(folder / "a.png")
    os.mkfifo(folder / "b.png")
    os.mkfifo(folder / "c")  # no extension: found by content, which a pipe must not be asked for
    assert frames.find_inputs([folder]) == [folder / "a.png", folder / "b.png"]
    with pytest.raises(FrameReadError, match="not a regular file"):
        read_frames(folder / "c")
    assert run("segment", folder, "--out", tmp_path / "out", "--model", models["unet"]) == 1
    assert "skipped b.png: not a regular file (a pipe, socket or device)" in errors(capsys)
    assert (tmp_path / "out" / "a.png").is_file()


def write_mkv(path: Path, count: int = 10) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    assert writer.isOpened()
    for i in range(count):
        writer.write(np.full((48, 64, 3), 20 * i, np.uint8))
    writer.release()
    return path


def test_a_cut_matroska_file_reports_its_missing_frames(tmp_path):
    whole = write_mkv(tmp_path / "whole.mkv")
    assert len(list(read_frames(whole))) == 10  # a whole file: no false alarm
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.5)])
    read = []
    with pytest.raises(FrameReadError, match=r"the video holds only \d of the 10 frames its header gives"):
        read.extend(read_frames(cut))
    assert 0 < len(read) < 10
    unknown = bytearray(whole.read_bytes())  # a live-written file leaves the Segment's size "unknown"
    at = unknown.index(b"\x18\x53\x80\x67") + 4
    length = 8 - unknown[at].bit_length() + 1
    unknown[at:at + length] = bytes([0xFF >> (length - 1)]) + b"\xff" * (length - 1)  # every value bit set
    live = tmp_path / "live.mkv"
    live.write_bytes(bytes(unknown[: int(len(unknown) * 0.5)]))
    assert 0 < len(list(read_frames(live))) < 10  # nothing can tell the cut: the frames there are read


# ---------------------------------------------------------------- evaluate


@pytest.fixture
def scored(tmp_path) -> Path:
    return scored_folder(tmp_path, "ab")


def evaluate(root: Path, *extra: str) -> int:
    return run("evaluate", "--predictions", root / "predictions", "--images", root / "images", "--masks", root / "masks",
               *[e.format(root=root) for e in extra])


@pytest.mark.parametrize("target", ["masks/a.png", "labels.csv"])
def test_evaluate_json_can_never_overwrite_an_input(scored, capsys, target):
    (scored / "labels.csv").write_text("id,tirads\na,3\n")
    before = (scored / target).read_bytes()
    with pytest.raises(SystemExit) as stopped:
        evaluate(scored, "--json", str(scored / target))
    assert stopped.value.code == 2 and "argument --json: must name a .json file" in capsys.readouterr().err
    assert (scored / target).read_bytes() == before


@pytest.mark.parametrize(("extra", "message"), [
    (["--tta"], "--tta and --inside-gland change what a model predicts; they need --model, not --predictions"),
    (["--inside-gland"], "--tta and --inside-gland change what a model predicts; they need --model, not --predictions"),
    (["--dataset", "{root}"], "give --dataset ROOT or --images DIR and --masks DIR, not both"),
    (["--split", "test"], "--split chooses a split of --dataset; give --dataset ROOT"),
])
def test_evaluate_options_that_would_be_silently_ignored_are_usage_errors(scored, capsys, extra, message):
    assert evaluate(scored, *extra) == 2
    assert capsys.readouterr().err == f"thyroid-studio evaluate: {message}\n"


def test_evaluate_says_when_the_labels_name_no_scored_frame(scored, models, capsys):
    (scored / "labels.csv").write_text("id,tirads\nzz,3\n")
    assert run("evaluate", "--model", models["trfe"], "--device", "cpu", "--images", scored / "images",
               "--masks", scored / "masks") == 0
    assert (f"findings not scored: {scored / 'labels.csv'} is there, but none of its 1 ids names a scored frame "
            "(ids like 'zz', frames like 'a')") in errors(capsys)


# ---------------------------------------------------------------- train, finetune


def train(*args) -> int:
    return run("train", "--arch", "unet", "--epochs", "1", "--size", "32", "--width", "2", "--device", "cpu", *args)


def test_train_never_writes_into_a_folder_of_other_files(tmp_path, pairs, capsys):
    foreign = tmp_path / "documents"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert train("--nodules", pairs, "--out", foreign) == 2
    assert errors(capsys) == [f"thyroid-studio train: --out {foreign} holds other files; a run gets a new or an empty folder"]
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]


def test_resuming_a_damaged_or_foreign_state_is_one_line(tmp_path, pairs, capsys):
    run_dir = tmp_path / "run"
    assert train("--nodules", pairs, "--out", run_dir) == 0
    capsys.readouterr()
    state = (run_dir / "state_last.pt").read_bytes()
    (run_dir / "state_last.pt").write_bytes(state[: len(state) // 2])
    assert train("--nodules", pairs, "--out", run_dir, "--resume") == 1
    [line] = errors(capsys)
    assert line.startswith(f"thyroid-studio train: the run failed: {run_dir / 'state_last.pt'}: not a readable run state")
    (run_dir / "state_last.pt").write_bytes(state)
    assert run("train", "--arch", "unet", "--epochs", "2", "--size", "32", "--width", "4", "--device", "cpu",
               "--nodules", pairs, "--out", run_dir, "--resume") == 1
    [line] = errors(capsys)
    assert line.startswith("thyroid-studio train: the run failed: state_last.pt does not fit this run's network and "
                           "settings (RuntimeError: ")
    assert (run_dir / "state_last.pt").read_bytes() == state


def finetune(models, pairs, *extra) -> int:
    return run("finetune", "--from", models["unet"], "--nodules", pairs, "--epochs", "2", "--batch", "2", "--device", "cpu", *extra)


def test_finetune_refuses_weights_that_do_not_fit_before_any_work(tmp_path, models, pairs, capsys):
    broken = crafted(models["unet"], tmp_path / "broken.pt",
                     lambda payload: payload["state_dict"].__setitem__(next(iter(payload["state_dict"])), torch.zeros(1)))
    assert run("finetune", "--from", broken, "--nodules", pairs, "--out", tmp_path / "new.pt", "--device", "cpu") == 2
    [line] = errors(capsys)
    assert line.startswith(f"thyroid-studio finetune: {broken}: weights do not match a unet")


def test_finetune_checks_the_user_model_folder_up_front(tmp_path, models, pairs, capsys, monkeypatch):
    blocker = tmp_path / "home"
    blocker.write_text("a file where the user folder's parent should be")
    monkeypatch.setenv("THYROID_STUDIO_HOME", str(blocker))
    assert finetune(models, pairs) == 2
    assert errors(capsys) == [f"thyroid-studio finetune: the user model folder {blocker / 'models'} cannot be created "
                              f"under the file {blocker}; pass --out FILE.pt"]


def ctrl_c_on_first_call(monkeypatch, owner, name: str) -> None:
    """Patch ``owner.name`` so that its first call presses Ctrl-C (SIGINT to this process), then does its work."""
    original = getattr(owner, name)
    calls = []

    def pressed(*args, **kwargs):
        if not calls:
            signal.raise_signal(signal.SIGINT)
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, pressed)


def test_ctrl_c_during_finetune_writes_nothing_and_says_so(tmp_path, models, pairs, capsys, monkeypatch):
    from thyroid_studio.engine.training.trainer import Trainer

    ctrl_c_on_first_call(monkeypatch, Trainer, "train_step")
    assert finetune(models, pairs, "--out", tmp_path / "new.pt") == cli.EXIT_INTERRUPTED
    lines = errors(capsys)
    assert lines[0] == ("thyroid-studio finetune: stopping after the current step; nothing will be written "
                        "(Ctrl-C again to stop at once)")
    assert lines[-1] == "thyroid-studio finetune: interrupted; nothing written"
    assert list(tmp_path.iterdir()) == []  # it used to print "wrote None" and exit 0


# ---------------------------------------------------------------- Ctrl-C: segment, prompt, dataset add


def test_ctrl_c_during_segment_keeps_a_whole_csv_of_the_frames_done(tmp_path, models, capsys, monkeypatch):
    from thyroid_studio.engine.inference.segmenter import Segmenter

    for stem in "abc":
        image(tmp_path / "in" / f"{stem}.png")
    ctrl_c_on_first_call(monkeypatch, Segmenter, "segment")
    out = tmp_path / "out"
    assert run("segment", tmp_path / "in", "--out", out, "--model", models["unet"], "--batch-size", "1") == 130
    rows = list(csv.DictReader((out / "segmentation.csv").open()))
    assert [row["mask"] for row in rows] == ["a.png"] and sorted(p.name for p in out.iterdir()) == ["a.png", "segmentation.csv"]
    assert any(line.startswith("interrupted after 1 frames from") for line in capsys.readouterr().err.splitlines())


def test_ctrl_c_during_prompt_keeps_the_summary_of_the_rows_done(tmp_path, models, monkeypatch, capsys):
    from thyroid_studio.engine.inference.prompting import PromptSegmenter

    source = image(tmp_path / "in" / "a.png")
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("file,x0,y0,x1,y1\n" + f"{source},2,2,20,20\n" * 3)
    ctrl_c_on_first_call(monkeypatch, PromptSegmenter, "segment")
    assert run("prompt", "--boxes", boxes, "--out", tmp_path / "out", "--model", models["prompt"]) == 130
    rows = list(csv.DictReader((tmp_path / "out" / "prompt.csv").open()))
    assert [row["mask"] for row in rows] == ["a.png"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "prompt.csv"]


def test_ctrl_c_during_dataset_add_leaves_it_consistent(tmp_path, pairs, monkeypatch, capsys):
    ctrl_c_on_first_call(monkeypatch, DatasetWriter, "add")
    dataset = tmp_path / "dataset"
    assert run("dataset", "add", dataset, pairs) == 130
    assert f"{dataset}: interrupted; added 1," in capsys.readouterr().out
    assert check(dataset) == [] and len(list((dataset / "trainval-image").iterdir())) == 1


# ---------------------------------------------------------------- report


def test_report_names_differing_only_in_case_clash(tmp_path, models, capsys):
    folder = tmp_path / "in"
    image(folder / "A.png"), image(folder / "a.png", level=200)
    assert run("report", folder, "--out", tmp_path / "out", "--model", models["unet"]) == 1
    assert [line for line in errors(capsys) if "skipped" in line] == [
        f"thyroid-studio report: skipped {folder / 'a.png'}: its report a.pdf would overwrite the report of "
        f"{folder / 'A.png'}; rename it"]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["A.pdf"]


def test_report_that_cannot_be_written_names_the_report_not_a_temporary_file(tmp_path, models, capsys):
    (tmp_path / "out" / "a.pdf").mkdir(parents=True)
    assert run("report", image(tmp_path / "in" / "a.png"), "--out", tmp_path / "out", "--model", models["unet"]) == 1
    assert errors(capsys) == [f"thyroid-studio report: skipped {tmp_path / 'in' / 'a.png'}: its report a.pdf is a "
                              "folder; rename it"]


# ---------------------------------------------------------------- dataset folders


@pytest.fixture
def dataset(tmp_path, pairs) -> Path:
    root = tmp_path / "dataset"
    assert run("dataset", "add", root, pairs) == 0
    return root


def test_a_journal_naming_a_file_outside_the_dataset_deletes_nothing(tmp_path, dataset, pairs, capsys):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (dataset / ".transaction.json").write_text(json.dumps({"op": "add", "key": "9999", "files": ["../victim.txt"]}))
    capsys.readouterr()
    assert run("dataset", "add", dataset, pairs) == 2
    [line] = errors(capsys)
    assert line.startswith(f"thyroid-studio dataset add: {dataset / '.transaction.json'}: not a journal this program wrote "
                           "(ValueError: '../victim.txt' is not a path inside the dataset)")
    assert run("dataset", "check", "--repair", dataset) == 1
    assert victim.read_text() == "precious"


@pytest.mark.parametrize("change", [{"image": "../outside.png"}, {"mask": "/etc/hostname"}, {"key": "../../escape"}])
def test_a_record_naming_a_file_outside_the_dataset_moves_nothing(tmp_path, dataset, change):
    outside = image(tmp_path / "outside.png")
    records = dataset / "records.jsonl"
    lines = records.read_text().splitlines()
    record = {**json.loads(lines[-1]), "key": "7777", **change}
    records.write_text("\n".join([*lines, json.dumps(record)]) + "\n")
    with pytest.raises(DatasetError, match="not a valid record .*(not a path inside the dataset|is not a plain name)"):
        DatasetWriter(dataset)
    [problem] = check(dataset)
    assert "not a valid record" in problem
    assert outside.is_file() and not list(tmp_path.glob("**/orphans"))


def test_a_records_header_claiming_absurd_folds_is_refused(dataset):
    records = dataset / "records.jsonl"
    lines = records.read_text().splitlines()
    lines[0] = json.dumps({"records": "thyroid-studio", "version": 2, "folds": 10 ** 8})  # 5 GB of fold lists
    records.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match="line 1 gives 100000000 folds; a dataset has 2 to 1000"):
        DatasetWriter(dataset)


def test_the_writer_never_hides_a_dataset_of_another_layout(tmp_path, pairs, capsys):
    copy = tmp_path / "pairs"
    shutil.copytree(pairs, copy)
    source = write_nodule_pairs(tmp_path / "more", ["x1", "x2"], seed=9, shape=(48, 64))
    assert run("dataset", "add", copy, source) == 2
    [line] = errors(capsys)
    assert line.startswith(f"thyroid-studio dataset add: {copy}: holds a pair-layout dataset; the writer keeps "
                           "TN3K-layout datasets")
    assert run("dataset", "check", "--repair", copy) == 1
    assert sorted(p.name for p in copy.iterdir()) == ["image", "mask"]  # no empty TN3K folders in front of its frames
    assert run("dataset", "stats", copy) == 0 and "pair layout, 8 items" in capsys.readouterr().out


@pytest.mark.parametrize("kind", ["a file", "under a file"])
def test_dataset_add_into_a_file_is_a_usage_error(tmp_path, pairs, capsys, kind):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    target = blocker if kind == "a file" else blocker / "dataset"
    assert run("dataset", "add", target, pairs) == 2
    expected = "is a file, not a folder" if kind == "a file" else f"cannot be created under the file {blocker}"
    assert errors(capsys) == [f"thyroid-studio dataset add: DATASET {target} {expected}"]


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="drops root's permission bypass with setpriv")
def test_read_only_dataset_and_out_folders_as_a_user_without_bypass(request, pairs, models):
    """Root writes into read-only folders; run as nobody with no capabilities, as a user would."""
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv is not installed")
    shared = Path(tempfile.mkdtemp(dir="/tmp"))  # pytest's own folder is private to root
    request.addfinalizer(lambda: shutil.rmtree(shared, ignore_errors=True))
    shutil.copytree(pairs, shared / "pairs")
    shutil.copy(models["unet"], shared / "unet.pt")
    (shared / "locked").mkdir()
    for path in [shared, *shared.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    (shared / "locked").chmod(0o555)
    nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"]
    cases = {
        ("dataset", "add", shared / "locked" / "ds", shared / "pairs"): "thyroid-studio dataset add: DATASET ",
        ("dataset", "check", "--repair", shared / "pairs"): "thyroid-studio dataset check: --repair writes into ",
        ("report", shared / "pairs" / "image" / "1.png", "--out", shared / "locked" / "r", "--model", shared / "unet.pt"):
            "thyroid-studio report: --out ",
    }
    for argv, start in cases.items():
        done = subprocess.run([*nobody, sys.executable, "-m", "thyroid_studio", *map(str, argv)], capture_output=True,
                              text=True, timeout=120, cwd=Path(__file__).resolve().parents[1])
        lines = done.stderr.splitlines()
        assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith(start) and "read-only" in lines[0], done.stderr
