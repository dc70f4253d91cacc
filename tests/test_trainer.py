"""Training, resume, stop, DDP, fine-tuning and the shipped checkpoints (tiny synthetic or real subsets only)."""
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

from thyroid_studio.engine.datasets.layouts import open_dataset
from thyroid_studio.engine.findings.fields import FIELDS
from thyroid_studio.engine.inference.segmenter import Segmenter
from thyroid_studio.engine.metrics import binary_metrics
from thyroid_studio.engine.models.architectures import build_model
from thyroid_studio.engine.models.checkpoint import ModelMeta, load_checkpoint, read_meta
from thyroid_studio.engine.models.library import default_model
from thyroid_studio.engine.progress import EpochProgress, StepProgress
from thyroid_studio.engine.training.augment import HorizontalFlip, build_augmentation
from thyroid_studio.engine.training.finetuning import FinetuneConfig, finetune, format_table
from thyroid_studio.engine.training.frameset import epoch_pairs, load_frames, make_batch, read_sample, shard
from thyroid_studio.engine.training.losses import LossWeights, multitask_loss, soft_dice_loss
from thyroid_studio.engine.training.run_folder import load_state
from thyroid_studio.engine.training.trainer import TrainConfig, train

REPO = Path(__file__).resolve().parents[1]
RUN_FILES = ("config.json", "env.json", "data.json", "metrics.jsonl", "progress.png", "train.log", "checkpoint_best.pt",
             "checkpoint_final.pt", "checkpoint_best.md", "checkpoint_final.md", "state_last.pt", "validation/summary.json")


def _write_pairs(root: Path, keys: list[str], seed: int, shape=(72, 88)) -> Path:
    """An image/ + mask/ dataset of speckled frames with one dark elliptic 'nodule' each."""
    rng = np.random.default_rng(seed)
    (root / "image").mkdir(parents=True)
    (root / "mask").mkdir()
    for key in keys:
        h, w = shape
        image = np.clip(rng.normal(120, 30, shape), 0, 255).astype(np.uint8)
        mask = np.zeros(shape, np.uint8)
        centre = (int(rng.integers(25, w - 25)), int(rng.integers(20, h - 20)))
        cv2.ellipse(mask, centre, (int(rng.integers(8, 16)), int(rng.integers(6, 12))), 0, 0, 360, 255, -1)
        image[mask > 0] //= 3
        cv2.imwrite(str(root / "image" / f"{key}.png"), image)
        cv2.imwrite(str(root / "mask" / f"{key}.png"), mask)
    return root


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("data")
    nodules = _write_pairs(base / "nodules", [str(i) for i in range(1, 11)] + ["10011", "20011"], seed=1)
    glands = _write_pairs(base / "glands", [f"{i:04d}" for i in range(12)], seed=2)
    (glands / "split.json").write_text(json.dumps({"train": [f"{i:04d}" for i in range(8)], "val": ["0008", "0009", "0010", "0011"]}))
    return {"nodules": nodules, "glands": glands}


def _config(synthetic, out: Path, **kwargs) -> TrainConfig:
    values = dict(arch="trfe-a", nodules=str(synthetic["nodules"]), glands=str(synthetic["glands"]), out=str(out),
                  epochs=2, width=4, size=64, batch_pairs=4, optimizer="adamw", schedule="cosine", device="cpu",
                  gland_val_frames=0)
    values.update(kwargs)
    return TrainConfig(**values)


# ----------------------------------------------------------------------------- pieces


def test_pairs_are_redrawn_each_epoch_and_reproducible():
    order0, glands0 = epoch_pairs(50, 400, epoch=0, seed=3)
    order1, glands1 = epoch_pairs(50, 400, epoch=1, seed=3)
    assert sorted(order0) == list(range(50)) and len(glands0) == 50
    assert not np.array_equal(glands0, glands1), "gland partners must be re-drawn each epoch"
    again = epoch_pairs(50, 400, epoch=0, seed=3)
    assert np.array_equal(again[0], order0) and np.array_equal(again[1], glands0)


def test_shards_cover_every_pair_like_distributed_sampler():
    indices = np.arange(11)
    parts = [shard(indices, rank, 3) for rank in range(3)]
    assert len({len(p) for p in parts}) == 1
    assert set(np.concatenate(parts)) == set(indices.tolist())


def test_flip_moves_masks_with_the_image():
    image = np.arange(12, dtype=np.uint8).reshape(3, 4)
    mask = (image % 2).astype(np.uint8)
    flipped, (fmask,) = HorizontalFlip(p=1.0)(image, [mask], np.random.default_rng(0))
    assert np.array_equal(flipped, image[:, ::-1]) and np.array_equal(fmask, mask[:, ::-1])


def test_ultrasound_augmentation_keeps_shapes_and_binary_masks():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (64, 64), dtype=np.uint8)
    mask = np.zeros((64, 64), np.uint8)
    mask[20:40, 20:40] = 1
    augmentation = build_augmentation("ultrasound")
    for _ in range(20):
        out, (out_mask,) = augmentation(image, [mask], rng)
        assert out.shape == image.shape and out.dtype == np.uint8
        assert set(np.unique(out_mask)) <= {0, 1}


def test_multitask_loss_scores_each_head_on_its_own_frames():
    target = torch.zeros(4, 1, 8, 8)
    target[:2, :, 2:6, 2:6] = 1  # nodule frames 0, 1
    target[2:] = 1  # gland frames 2, 3
    perfect = (target * 2 - 1) * 20
    wrong = -perfect
    is_nodule = torch.tensor([True, True, False, False])
    loss, parts = multitask_loss({"nodule": perfect, "gland": perfect}, target, is_nodule)
    assert loss < 0.02
    # A nodule head that is wrong on gland frames costs nothing: it is not scored there.
    nodule_out = torch.cat([perfect[:2], wrong[2:]])
    assert multitask_loss({"nodule": nodule_out, "gland": perfect}, target, is_nodule)[0] < 0.02
    assert soft_dice_loss(wrong[:1], target[:1]).item() > 0.9
    assert set(parts) == {"nodule_loss", "gland_loss"}


def test_a_few_steps_lower_the_loss_on_real_frames(shared_data):
    torch.manual_seed(0)
    meta = ModelMeta(arch="trfe-a", width=4, input_size=(64, 64))
    nodules = load_frames(open_dataset(shared_data / "ddti").samples[:8], meta)
    glands = load_frames(open_dataset(shared_data / "tg3k").split("train")[:8], meta)
    items = [(nodules, i, True) for i in range(8)] + [(glands, i, False) for i in range(8)]
    none = build_augmentation("none")
    batch = make_batch(items, meta, {True: none, False: none}, np.random.default_rng(0))
    model = build_model("trfe-a", 4)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(12):
        loss, _ = multitask_loss(model(batch.inputs), batch.masks, batch.is_nodule, LossWeights("dice+bce"))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.1, losses


# ----------------------------------------------------------------------------- runs


@pytest.fixture(scope="module")
def finished_run(synthetic, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "run"
    result = train(_config(synthetic, out), show_bar=False)
    assert result.status == "finished" and result.epochs_done == 2
    return out


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


def test_resume_continues_where_it_stopped(synthetic, finished_run, tmp_path):
    out = tmp_path / "resumed"
    stops = iter([False] * 3 + [True] * 1000)  # epoch 1 has 3 steps (10 train frames, 4 pairs per step)
    result = train(_config(synthetic, out), should_stop=lambda: next(stops), show_bar=False)
    assert result.status == "stopped" and result.epochs_done == 1
    assert load_state(out / "state_last.pt")["epoch"] == 1
    result = train(_config(synthetic, out, resume=True), show_bar=False)
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

    result = train(_config(synthetic, tmp_path / "run", epochs=1), progress=interrupt, show_bar=False)
    assert result.status == "interrupted"
    assert load_state(tmp_path / "run" / "state_last.pt")["epoch"] == 0


def test_an_existing_run_is_not_overwritten_without_resume(synthetic, finished_run):
    with pytest.raises(FileExistsError):
        train(_config(synthetic, finished_run), show_bar=False)


def test_unet_trains_on_nodule_frames_only(synthetic, tmp_path):
    result = train(_config(synthetic, tmp_path / "unet", arch="unet", glands=None, epochs=1), show_bar=False)
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


# ----------------------------------------------------------------------------- fine-tuning


def test_finetune_writes_a_new_checkpoint_and_leaves_the_source_alone(synthetic, finished_run, tmp_path):
    source = finished_run / "checkpoint_best.pt"
    before = source.read_bytes()
    corrected = _write_pairs(tmp_path / "corrected", [str(i) for i in range(100, 110)], seed=5)
    events = []
    out = tmp_path / "tuned.pt"
    result = finetune(FinetuneConfig(str(source), str(corrected), out=str(out), epochs=2, device="cpu"), progress=events.append)
    assert result.status == "finished" and out.is_file() and out.with_suffix(".md").is_file()
    assert source.read_bytes() == before
    meta = read_meta(out)
    assert meta.version == "2" and meta.training["finetuned_from"]["file"] == source.name
    assert meta.training["split"]["validation_keys"] == ["1", "2", "3"]  # the original split carries over
    assert set(result.table) == {"held_out", "original_validation"}
    assert "original validation" in format_table(result.table)
    # By default the encoder and the nodule decoder learn from nodule-only corrections; the gland branch stays as it was.
    old_state, new_state = (load_checkpoint(p)[0].state_dict() for p in (source, out))
    changed = {k.split(".")[0] for k in old_state if not torch.equal(old_state[k], new_state[k])}
    assert changed == {"encoder", "nodule_decoder"}
    assert any(isinstance(e, StepProgress) for e in events)
    # The held-out Dice before fine-tuning and after each of the 2 epochs, for the dialog's live curve.
    held_out = [e for e in events if isinstance(e, EpochProgress)]
    assert [e.epoch for e in held_out] == [0, 1, 2]
    assert held_out[0].metrics["held_out_dice"] == result.table["held_out"]["before"]["dice"]
    assert held_out[-1].metrics["held_out_dice"] == result.table["held_out"]["after"]["dice"]
    for target in (source, out):
        with pytest.raises((ValueError, FileExistsError)):
            finetune(FinetuneConfig(str(source), str(corrected), out=str(target), epochs=1, device="cpu"))
    assert source.read_bytes() == before


def test_finetune_stops_without_writing(synthetic, finished_run, tmp_path):
    corrected = _write_pairs(tmp_path / "corrected", [str(i) for i in range(100, 110)], seed=6)
    out = tmp_path / "tuned.pt"
    result = finetune(FinetuneConfig(str(finished_run / "checkpoint_best.pt"), str(corrected), out=str(out), device="cpu"),
                      should_stop=lambda: True)
    assert result.status == "stopped" and not out.exists()


# ----------------------------------------------------------------------------- the shipped models


@pytest.mark.parametrize("role", ["trfe", "unet"])
def test_shipped_models_segment_ddti_frames(role, shared_data):
    """The shipped models were trained on all 509 DDTI frames (their cross-validated scores are on their cards):
    on a dozen of those frames they must segment well, and TRFE-Net's gland must hold the nodule.
    A broken, mismatched or half-written file fails here."""
    path = default_model(role)
    model, meta = load_checkpoint(path)
    assert path.stat().st_size <= 30 * 2**20
    assert meta.training["split"]["fold"] is None and not Path(meta.training["data"]["nodules"]).is_absolute()
    samples = open_dataset(shared_data / "ddti").samples
    segmenter = Segmenter(model, meta, device="cpu")
    dice, coverage = [], []
    for sample in samples[:: len(samples) // 12][:12]:
        frame, gt = read_sample(sample)
        result = segmenter(frame)
        dice.append(binary_metrics(result.nodule_mask, gt)["dice"])
        if result.gland_mask is not None:
            coverage.append(result.gland_mask[gt].mean())
    assert np.mean(dice) > 0.7, dice
    assert meta.has_gland == bool(coverage) and (not coverage or np.median(coverage) > 0.9), coverage


# ----------------------------------------------------------------------------- pretrained encoder, prior, findings


def _with_labels(synthetic, tmp_path) -> Path:
    """The synthetic nodules with a labels.csv: known findings on most frames (both suspicious classes)."""
    from thyroid_studio.engine.findings.fields import Findings, write_labels

    labels = {key: Findings({"tirads": "2" if i % 3 == 0 else "4b", "composition": "solid"})
              for i, key in enumerate(["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"])}
    path = tmp_path / "labels.csv"
    write_labels(path, labels)
    return path


def test_pretrained_encoder_with_findings_weak_gland_and_zoom(synthetic, tmp_path):
    out = tmp_path / "lite"
    config = _config(synthetic, out, encoder="efficientnet-lite0", labels=str(_with_labels(synthetic, tmp_path)),
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
    result = train(_config(synthetic, out, arch="unet", glands=None, fold=None, epochs=1), show_bar=False)
    assert result.status == "finished" and result.best_checkpoint == out / "checkpoint_best.pt"
    data = json.loads((out / "data.json").read_text())
    assert data["nodules"]["val_count"] == 0 and data["nodules"]["train_count"] == 12
    assert read_meta(out / "checkpoint_best.pt").training["split"]["scheme"] == "all frames, no validation"


def test_weak_gland_loss_only_pushes_the_gland_up_inside_the_nodule():
    from thyroid_studio.engine.training.losses import weak_gland_loss

    logits = torch.zeros(1, 1, 8, 8, requires_grad=True)
    nodule = torch.zeros(1, 1, 8, 8)
    nodule[..., 2:4, 2:4] = 1
    weak_gland_loss(logits, nodule).backward()
    assert (logits.grad[nodule == 1] < 0).all() and (logits.grad[nodule == 0] == 0).all()
    confident = torch.full((1, 1, 8, 8), 10.0)
    assert weak_gland_loss(confident, nodule) < 1e-3 < weak_gland_loss(-confident, nodule)


def test_findings_loss_skips_unknown_labels_and_weights_classes():
    from thyroid_studio.engine.training.losses import findings_loss

    logits = {"suspicious": torch.tensor([3.0, -3.0, 0.0]), "tirads": torch.zeros(3, 6)}
    labels = {"suspicious": torch.tensor([1, 0, -1]), "tirads": torch.tensor([-1, -1, -1])}
    weights = {"suspicious": torch.tensor([1.0, 1.0]), "tirads": torch.ones(6)}
    losses = findings_loss(logits, labels, weights)
    assert set(losses) == {"suspicious"} and losses["suspicious"] < 0.06  # both known frames right; the third unknown
    heavy = findings_loss({"suspicious": torch.tensor([-3.0, -3.0])}, {"suspicious": torch.tensor([1, 0])},
                          {"suspicious": torch.tensor([1.0, 9.0])})["suspicious"]
    light = findings_loss({"suspicious": torch.tensor([-3.0, -3.0])}, {"suspicious": torch.tensor([1, 0])},
                          {"suspicious": torch.tensor([9.0, 1.0])})["suspicious"]
    assert heavy > light  # the wrong frame (class 1) counts more when its class weighs more


def test_zoom_to_mask_makes_the_gland_fill_more_of_the_frame():
    from thyroid_studio.engine.training.augment import ZoomToMask

    image = np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)
    mask = np.zeros((64, 64), np.uint8)
    mask[28:36, 20:40] = 1
    rng = np.random.default_rng(1)
    for _ in range(10):
        out, (zoomed,) = ZoomToMask(p=1.0)(image, [mask], rng)
        assert out.shape == image.shape and set(np.unique(zoomed)) <= {0, 1}
        assert zoomed.sum() > 1.5 * mask.sum()


def test_finetuning_the_nodule_decoder_leaves_encoder_and_gland_decoder_alone(synthetic, finished_run, tmp_path):
    source = finished_run / "checkpoint_best.pt"
    corrected = _write_pairs(tmp_path / "corrected", [str(i) for i in range(100, 110)], seed=7)
    out = tmp_path / "tuned.pt"
    result = finetune(FinetuneConfig(str(source), str(corrected), out=str(out), epochs=1, device="cpu",
                                     trainable="nodule-decoder", optimizer="sgd", lr=1e-3))
    assert result.status == "finished"
    old_state, new_state = (load_checkpoint(p)[0].state_dict() for p in (source, out))
    changed = {k.split(".")[0] for k in old_state if not torch.equal(old_state[k], new_state[k])}
    assert changed == {"nodule_decoder"}
    assert read_meta(out).training["recipe"]["finetune"]["trainable"] == "nodule-decoder"


def test_findings_loss_is_never_nan_when_the_weights_know_no_class():
    """Fine-tuning on corrected frames without labels, replaying labelled ones: a head whose class weights
    are all 0 (no labelled frame in the weighted sets) must add nothing, not NaN."""
    from thyroid_studio.engine.training.frameset import FrameSet, class_weights
    from thyroid_studio.engine.training.losses import findings_loss

    empty = FrameSet([], np.zeros((0, 4, 4), np.uint8), np.zeros((0, 4, 4), np.uint8), {"suspicious": np.zeros(0, np.int64)})
    labelled = FrameSet(["a", "b"], np.zeros((2, 4, 4), np.uint8), np.zeros((2, 4, 4), np.uint8),
                        {"suspicious": np.array([1, 0])})
    vocabulary = {"tirads": list(FIELDS["tirads"])}
    assert class_weights([empty], vocabulary)["suspicious"].sum() == 0
    assert torch.equal(class_weights([empty, labelled], vocabulary)["suspicious"], torch.tensor([1.0, 1.0]))
    losses = findings_loss({"suspicious": torch.tensor([2.0, -2.0])}, {"suspicious": torch.tensor([1, 0])},
                           class_weights([empty], vocabulary))
    assert losses == {}


def test_a_card_states_the_limitations_its_own_cross_validation_shows(finished_run, tmp_path):
    """ship_model records cross-validation in the metrics; the card then says what those figures show:
    a gland over nearly the whole image is no prior, an AUC whose interval reaches 0.5 is not evidence."""
    from thyroid_studio.engine.models.card import write_model_card

    _, meta = load_checkpoint(finished_run / "checkpoint_final.pt")
    meta.metrics = {"cross_validation": {
        "description": "exam-grouped 2-fold", "folds": [{"fold": 0, "n": 5, "dice": 0.7}, {"fold": 1, "n": 5, "dice": 0.8}],
        "n": 10, "dice_mean": 0.75, "dice_std": 0.05, "dice_frames": 0.75, "coverage_median": 1.0, "gland_share_mean": 0.97,
        "findings": {"suspicious": {"n": 10, "accuracy": 0.8, "balanced_accuracy": 0.5, "majority_accuracy": 0.8,
                                    "auc": 0.56, "auc_low": 0.46, "auc_high": 0.67}}}}
    card = write_model_card(tmp_path / "m.pt", meta).read_text()
    assert "No frame was held out from this model's training" in card
    assert "marks 97.00 % of the ultrasound image as gland" in card
    assert "AUC 0.560 (95 % CI down to 0.460): not reliably better than chance" in card
    assert "\n\n| finding | frames |" in card  # a Markdown table needs the blank line before it
    meta.metrics["cross_validation"].update(gland_share_mean=0.4)
    meta.metrics["cross_validation"]["findings"]["suspicious"].update(auc=0.9, auc_low=0.8)
    card = write_model_card(tmp_path / "m.pt", meta).read_text()
    assert "as gland" not in card and "better than chance" not in card
