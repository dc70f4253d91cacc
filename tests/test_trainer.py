"""Training runs: the run folder, resume, stop, DDP, the pretrained encoder with findings, weak gland and zoom,
all frames and no validation, gland masks of the nodule frames, gland frames per step (tiny synthetic sets; fine-tuning: test_finetuning.py)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from thyroid_studio.engine.findings.fields import FIELDS
from thyroid_studio.engine.models.checkpoint import read_meta
from thyroid_studio.engine.progress import StepProgress
from thyroid_studio.engine.training.run_folder import load_state
from thyroid_studio.engine.training.trainer import Trainer, nodule_gland_files, train

from training_runs import train_config

REPO = Path(__file__).resolve().parents[1]
RUN_FILES = ("config.json", "env.json", "data.json", "metrics.jsonl", "progress.png", "train.log", "checkpoint_best.pt",
             "checkpoint_final.pt", "checkpoint_best.md", "checkpoint_final.md", "state_last.pt", "validation/summary.json")


# ----------------------------------------------------------------------------- runs


def test_run_folder_holds_its_files(finished_run):
    for name in RUN_FILES:
        assert (finished_run / name).is_file(), name
    rows = [json.loads(line) for line in (finished_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert {"loss", "nodule_loss", "gland_loss", "val_nodule_dice", "val_nodule_iou", "val_gland_dice", "lr", "seconds"} <= set(rows[0])
    meta = read_meta(finished_run / "checkpoint_best.pt")
    assert meta.arch == "trfe-a" and meta.width == 4 and meta.input_size == (64, 64)
    assert meta.training["split"]["validation_keys"] == ["1", "2", "3"]  # fold 0 of 5 = the first 3 of 11 exams
    assert meta.training["recipe"]["optimizer"] == "adamw" and meta.metrics["nodule"]["n"] == 3
    assert "For research, not diagnosis." in (finished_run / "checkpoint_best.md").read_text()
    summary = json.loads((finished_run / "validation" / "summary.json").read_text())
    assert summary["nodule"]["n"] == 3 and len(summary["nodule"]["cases"]) == 3


def test_state_last_loads_weights_only(finished_run):
    state = torch.load(finished_run / "state_last.pt", weights_only=True)
    assert state["epoch"] == 2 and {"model", "optimizer", "scheduler", "torch_rng", "best"} <= set(state)


@pytest.mark.slow
def test_resume_continues_where_it_stopped(synthetic, finished_run, tmp_path):
    out = tmp_path / "resumed"
    stops = iter([False] * 3 + [True] * 1000)  # epoch 1 has 3 steps (10 train frames, 4 pairs per step)
    result = train(train_config(synthetic, out), should_stop=lambda: next(stops), show_bar=False)
    assert result.status == "stopped" and result.epochs_done == 1
    assert load_state(out / "state_last.pt")["epoch"] == 1
    result = train(train_config(synthetic, out, resume=True), show_bar=False)
    assert result.status == "finished" and result.epochs_done == 2
    assert [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    straight, resumed = load_state(finished_run / "state_last.pt"), load_state(out / "state_last.pt")
    assert resumed["epoch"] == straight["epoch"] == 2
    for key, value in straight["model"].items():
        assert torch.equal(value, resumed["model"][key]), key


def test_keyboard_interrupt_saves_state(synthetic, tmp_path):
    def interrupt(event):
        if isinstance(event, StepProgress) and event.step == 2:
            raise KeyboardInterrupt

    result = train(train_config(synthetic, tmp_path / "run", epochs=1), progress=interrupt, show_bar=False)
    assert result.status == "interrupted"
    assert load_state(tmp_path / "run" / "state_last.pt")["epoch"] == 0


def test_an_existing_run_is_not_overwritten_without_resume(synthetic, finished_run):
    with pytest.raises(FileExistsError):
        train(train_config(synthetic, finished_run), show_bar=False)


def test_unet_trains_on_nodule_frames_only(synthetic, tmp_path):
    result = train(train_config(synthetic, tmp_path / "unet", arch="unet", glands=None, epochs=1), show_bar=False)
    assert result.status == "finished"
    assert "glands" not in json.loads((tmp_path / "unet" / "data.json").read_text())


@pytest.mark.slow  # two processes start torch: ~20 s on 2 cores
def test_ddp_two_gloo_processes(synthetic, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517",
               "-m", "thyroid_studio", "train", "--arch", "trfe-a", "--nodules", str(synthetic["nodules"]),
               "--glands", str(synthetic["glands"]), "--out", str(out), "--epochs", "1", "--width", "4", "--size", "64",
               "--batch-pairs", "2", "--device", "cpu"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((out / "env.json").read_text())["world_size"] == 2
    assert (out / "checkpoint_final.pt").is_file()
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1  # only rank 0 writes


# ----------------------------------------------------------------------------- pretrained encoder, prior, findings


def _with_labels(synthetic, tmp_path) -> Path:
    """The synthetic nodules with a labels.csv: known findings on most frames (both suspicious classes)."""
    from thyroid_studio.engine.findings.fields import Findings, write_labels

    labels = {key: Findings({"tirads": "2" if i % 3 == 0 else "4b", "composition": "solid"})
              for i, key in enumerate(["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"])}
    path = tmp_path / "labels.csv"
    write_labels(path, labels)
    return path


@pytest.mark.slow
def test_pretrained_encoder_with_findings_weak_gland_and_zoom(synthetic, tmp_path):
    out = tmp_path / "lite"
    config = train_config(synthetic, out, encoder="efficientnet-lite0", labels=str(_with_labels(synthetic, tmp_path)),
                     weak_gland=0.5, gland_zoom=0.5, findings_weight=0.2)
    result = train(config, show_bar=False)
    assert result.status == "finished"
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert {"weak_gland_loss", "suspicious_loss", "tirads_loss", "composition_loss", "val_gland_coverage"} <= set(rows[-1])
    meta = read_meta(out / "checkpoint_final.pt")
    assert meta.encoder == "efficientnet-lite0" and meta.in_channels == 1 and set(meta.findings) == set(FIELDS)
    assert meta.training["data"]["nodules"].startswith("..") or not Path(meta.training["data"]["nodules"]).is_absolute()
    prior = meta.metrics["nodule"]["gland_prior"]
    assert 0 <= prior["coverage_median"] <= 1 and 0 <= prior["gland_share_mean"] <= 1
    card = (out / "checkpoint_final.md").read_text()
    assert "EfficientNet-Lite0" in card and "Apache-2.0" in card and "covers a median" in card
    summary = json.loads((out / "validation" / "summary.json").read_text())
    assert "findings" in summary["nodule"] and "suspicious_prob" in summary["nodule"]["cases"][0]


def test_fold_all_trains_on_every_frame_and_ships_the_final_model(synthetic, tmp_path):
    out = tmp_path / "all"
    result = train(train_config(synthetic, out, arch="unet", glands=None, fold=None, epochs=1), show_bar=False)
    assert result.status == "finished" and result.best_checkpoint == out / "checkpoint_best.pt"
    data = json.loads((out / "data.json").read_text())
    assert data["nodules"]["val_count"] == 0 and data["nodules"]["train_count"] == 12
    assert read_meta(out / "checkpoint_best.pt").training["split"]["scheme"] == "all frames, no validation"


def test_nodule_glands_train_the_gland_head_from_training_frames_only(synthetic, tmp_path):
    from thyroid_studio.engine.datasets.splits import fold_split

    lobes = tmp_path / "lobes"
    lobes.mkdir()
    keys = sorted(p.stem for p in (synthetic["nodules"] / "mask").glob("*.png"))
    for key in keys:
        mask = cv2.imread(str(synthetic["nodules"] / "mask" / f"{key}.png"), cv2.IMREAD_GRAYSCALE)
        cv2.imwrite(str(lobes / f"{key}.png"), cv2.dilate(mask, np.ones((15, 15), np.uint8)))
    train_keys, val_keys = fold_split(keys, 0, 5)
    out = tmp_path / "run"
    result = train(train_config(synthetic, out, glands=None, nodule_glands=str(lobes), prior_grad="detach",
                                gland_batch=0, epochs=1), show_bar=False)
    assert result.status == "finished"
    data = json.loads((out / "data.json").read_text())
    assert data["nodule_glands"]["train_labelled"] == len(train_keys) and val_keys
    assert "glands" not in data  # no gland dataset: the gland head learnt from the nodule frames' own glands
    meta = read_meta(out / "checkpoint_final.pt")
    assert meta.training["recipe"]["prior_grad"] == "detach" and meta.training["data"]["nodule_glands"]
    assert nodule_gland_files(str(lobes), train_keys).keys() == set(train_keys)


def test_gland_batch_sets_how_many_gland_frames_a_step_takes(synthetic, tmp_path):
    trainer = Trainer(train_config(synthetic, tmp_path / "run", batch_pairs=4, gland_batch=1))
    trainer.prepare_data()
    steps = trainer.epoch_steps(0)
    assert all(sum(not nodule for _, _, nodule in items) == 1 for items in steps)
    assert sum(nodule for items in steps for _, _, nodule in items) == len(trainer.sets["train"])
