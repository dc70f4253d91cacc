"""Fine-tuning: too few corrected frames stop it before it starts (before even reading the checkpoint); a new
checkpoint beside an untouched source, stopping without writing, the nodule decoder alone."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from thyroid_studio.engine.datasets.writer import DatasetWriter
from thyroid_studio.engine.models.checkpoint import load_checkpoint, read_meta
from thyroid_studio.engine.progress import EpochProgress, StepProgress
from thyroid_studio.engine.training.finetuning import MIN_CORRECTED_FRAMES, FinetuneConfig, finetune, format_table

from dataset_files import write_nodule_pairs


def test_finetuning_refuses_too_few_corrected_frames(tmp_path):
    writer = DatasetWriter(tmp_path / "corrected")
    mask = np.zeros((32, 32), bool)
    mask[8:20, 8:20] = True
    for i in range(MIN_CORRECTED_FRAMES - 1):
        writer.add(np.full((32, 32), 10 * i, np.uint8), mask, source=f"frame{i}")
    with pytest.raises(ValueError, match=f"needs at least {MIN_CORRECTED_FRAMES}"):
        finetune(FinetuneConfig(str(tmp_path / "no-checkpoint-needed.pt"), str(tmp_path / "corrected")))


def test_finetune_writes_a_new_checkpoint_and_leaves_the_source_alone(synthetic, finished_run, tmp_path):
    source = finished_run / "checkpoint_best.pt"
    before = source.read_bytes()
    corrected = write_nodule_pairs(tmp_path / "corrected", [str(i) for i in range(100, 110)], seed=5)
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
    corrected = write_nodule_pairs(tmp_path / "corrected", [str(i) for i in range(100, 110)], seed=6)
    out = tmp_path / "tuned.pt"
    result = finetune(FinetuneConfig(str(finished_run / "checkpoint_best.pt"), str(corrected), out=str(out), device="cpu"),
                      should_stop=lambda: True)
    assert result.status == "stopped" and not out.exists()


def test_finetuning_the_nodule_decoder_leaves_encoder_and_gland_decoder_alone(synthetic, finished_run, tmp_path):
    source = finished_run / "checkpoint_best.pt"
    corrected = write_nodule_pairs(tmp_path / "corrected", [str(i) for i in range(100, 110)], seed=7)
    out = tmp_path / "tuned.pt"
    result = finetune(FinetuneConfig(str(source), str(corrected), out=str(out), epochs=1, device="cpu",
                                     trainable="nodule-decoder", optimizer="sgd", lr=1e-3))
    assert result.status == "finished"
    old_state, new_state = (load_checkpoint(p)[0].state_dict() for p in (source, out))
    changed = {k.split(".")[0] for k in old_state if not torch.equal(old_state[k], new_state[k])}
    assert changed == {"nodule_decoder"}
    assert read_meta(out).training["recipe"]["finetune"]["trainable"] == "nodule-decoder"
