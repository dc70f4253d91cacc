"""Fine-tuning measures what it claims (issue 18, items 4 and 5): a source trained on all its frames (the shipped
models) has its forgetting measured on a fixed sample of its training frames, recorded in the new checkpoint and
said in the card and the dialog; advice names only figures it computed; held-out corrections keep each clip (and
copies of one image) on one side."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import Qt

from thyroid_studio.app.dialogs.finetune_dialog import FinetuneDialog
from thyroid_studio.engine.datasets.writer import DatasetWriter
from thyroid_studio.engine.models.checkpoint import read_meta
from thyroid_studio.engine.progress import Finished
from thyroid_studio.engine.training import finetuning
from thyroid_studio.engine.training.finetuning import (FORGETTING_FRAMES, ORIGINAL_SAMPLE, FinetuneConfig, FinetuneTrainer,
                                                       finetune, format_table)
from thyroid_studio.engine.training.trainer import TrainConfig, train

SHAPE = (48, 64)


def nodule_frame(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A speckled frame with one dark elliptic nodule, and its mask."""
    image = np.clip(rng.normal(120, 30, SHAPE), 0, 255).astype(np.uint8)
    mask = np.zeros(SHAPE, np.uint8)
    centre = (int(rng.integers(18, SHAPE[1] - 18)), int(rng.integers(14, SHAPE[0] - 14)))
    cv2.ellipse(mask, centre, (int(rng.integers(6, 12)), int(rng.integers(5, 9))), 0, 0, 360, 255, -1)
    image[mask > 0] //= 3
    return image, mask > 0


def image_mask_folder(root: Path, count: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    for name in ("image", "mask"):
        (root / name).mkdir(parents=True)
    for i in range(1, count + 1):
        image, mask = nodule_frame(rng)
        cv2.imwrite(str(root / "image" / f"{i}.png"), image)
        cv2.imwrite(str(root / "mask" / f"{i}.png"), mask.astype(np.uint8) * 255)
    return root


@pytest.fixture(scope="module")
def trained_on_everything(tmp_path_factory) -> tuple[Path, Path]:
    """(checkpoint, its training data): a tiny U-Net trained on all 80 frames, no validation split, as shipped."""
    base = tmp_path_factory.mktemp("source")
    data = image_mask_folder(base / "original", 80, seed=1)
    config = TrainConfig(arch="unet", nodules=str(data), glands=None, out=str(base / "run"), fold=None, epochs=1,
                         width=4, size=64, batch_pairs=8, optimizer="adamw", schedule="cosine", device="cpu")
    assert train(config, show_bar=False).status == "finished"
    checkpoint = base / "run" / "checkpoint_final.pt"
    assert read_meta(checkpoint).training["split"]["validation_keys"] == []
    return checkpoint, data


def corrected_dataset(root: Path, clip: int = 6, singles: int = 6, seed: int = 5) -> tuple[Path, list[str]]:
    """A dataset as the app saves it: single frames, then the frames of one clip (one source file); returns the
    clip's keys."""
    rng = np.random.default_rng(seed)
    writer = DatasetWriter(root)
    for i in range(singles):
        writer.add(*nodule_frame(rng), source=root.parent / f"single{i}.png")
    return root, [writer.add(*nodule_frame(rng), source=root.parent / "clip.dcm", frame_index=i).key
                  for i in range(clip)]


def test_a_source_without_validation_measures_forgetting_on_a_fixed_sample_of_its_training_frames(
        trained_on_everything, tmp_path):
    source, original = trained_on_everything
    corrected, _ = corrected_dataset(tmp_path / "corrected")
    out = tmp_path / "tuned.pt"
    result = finetune(FinetuneConfig(str(source), str(corrected), out=str(out), epochs=1, batch=4, device="cpu"))
    assert result.status == "finished"
    assert set(result.table) == {"held_out", ORIGINAL_SAMPLE}  # today: held_out alone, forgetting unmeasured
    assert result.table[ORIGINAL_SAMPLE]["n"] == FORGETTING_FRAMES
    meta = read_meta(out)
    sample = meta.training["forgetting_sample_keys"]
    assert len(sample) == FORGETTING_FRAMES and sample[0] == "1" and sample[-1] == "80"  # spread over the frames
    text = format_table(result.table)
    assert "original training frames (fixed sample)" in text and "the source has no validation split" in text
    card = out.with_suffix(".md").read_text()
    assert "## Fine-tuning" in card and f"a fixed sample of {FORGETTING_FRAMES} of its training frames" in card
    assert "original validation" not in card.lower()

    # the sample is fixed: fine-tuning the new checkpoint again scores the same frames, and never replays them
    again = FinetuneTrainer(FinetuneConfig(str(out), str(corrected), out=str(tmp_path / "again.pt"), device="cpu"))
    again.prepare_data()
    assert again.original_row == ORIGINAL_SAMPLE and again.sets["val"].keys == sample
    assert not set(again.sets["replay"].keys) & set(sample) and len(again.sets["replay"]) == 80 - FORGETTING_FRAMES


def test_without_the_original_frames_forgetting_is_said_not_measured(trained_on_everything, tmp_path, monkeypatch):
    source, _ = trained_on_everything
    corrected, _ = corrected_dataset(tmp_path / "corrected")
    monkeypatch.setattr(finetuning, "from_project", lambda recorded: tmp_path / "not-on-this-machine")
    result = finetune(FinetuneConfig(str(source), str(corrected), out=str(tmp_path / "t.pt"), epochs=1, batch=4,
                                     device="cpu"))
    assert set(result.table) == {"held_out"}
    lines = format_table(result.table).splitlines()
    assert len(lines) == 3 and lines[1].startswith("held-out corrected frames")  # header, the one row, the advice
    assert "forgetting was not measured" in lines[2] and "original validation" not in lines[2]


def test_held_out_corrections_keep_a_clip_on_one_side(trained_on_everything, tmp_path):
    source, _ = trained_on_everything
    corrected, clip = corrected_dataset(tmp_path / "corrected", clip=6, singles=6)  # 25 %: 3 frames held out
    trainer = FinetuneTrainer(FinetuneConfig(str(source), str(corrected), out=str(tmp_path / "t.pt"), device="cpu"))
    trainer.prepare_data()
    held = set(trainer.held_keys)
    assert set(clip) <= held  # today: the last 3 keys, frames 3-5 of the clip, held out while frames 0-2 train
    assert len(held) < 12


@pytest.mark.parametrize("table, said, not_said", [
    ({"held_out": {"n": 4, "before": {"dice": 0.6}, "after": {"dice": 0.7}}},
     ["forgetting was not measured", "activating the new model is advised"], ["original validation", "points,"]),
    ({"held_out": {"n": 4, "before": {"dice": 0.6}, "after": {"dice": 0.7}},
      ORIGINAL_SAMPLE: {"n": 64, "before": {"dice": 0.8}, "after": {"dice": 0.75}}},
     ["a fixed sample of 64 of its training frames (the source has no validation split)", "-5.00 points",
      "keeping the current model is advised"], ["original validation", "not measured"]),
    ({"held_out": {"n": 4, "before": {"dice": 0.6}, "after": {"dice": 0.58}},
      "original_validation": {"n": 50, "before": {"dice": 0.8}, "after": {"dice": 0.8}}},
     ["did not improve", "the original validation changed by +0.00 points", "keeping the current model is advised"],
     ["training frames", "not measured"]),
])
def test_the_dialog_advises_only_on_figures_it_has(qtbot, tmp_path, table, said, not_said):
    dialog = FinetuneDialog(tmp_path / "corrected", tmp_path / "base.pt")
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.job.done.emit(Finished("finished", 3.0, "/models/tuned-v2.pt", table))
    status = dialog.status.text()
    for text in said:
        assert text in status, status
    for text in not_said:
        assert text not in status, status
    titles = [dialog.table.verticalHeaderItem(r).text() for r in range(dialog.table.rowCount())]
    assert titles[0] == "Held-out corrected frames" and len(titles) == len(table)
    if ORIGINAL_SAMPLE in table:
        assert titles[1] == "Original training frames (fixed sample)"
    qtbot.keyClick(dialog, Qt.Key.Key_Escape)
