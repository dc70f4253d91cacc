"""Progress events: fine-tuning's dicts become dataclasses in one place; too few corrected frames stop
fine-tuning before it starts."""
from __future__ import annotations

import numpy as np
import pytest

from thyroid_studio.engine.datasets import DatasetWriter
from thyroid_studio.engine.finetuning import MIN_CORRECTED_FRAMES, FinetuneConfig, finetune
from thyroid_studio.engine.progress import EpochProgress, StageProgress, StepProgress, from_finetune_dict


def test_finetune_dicts_become_events():
    assert from_finetune_dict({"stage": "train", "epoch": 1, "epochs": 2, "step": 3, "steps": 4, "loss": 0.5}) == \
        StepProgress(1, 2, 3, 4, 0.5)
    assert from_finetune_dict({"stage": "validate", "epoch": 0, "epochs": 2, "dice": 0.7}) == EpochProgress(0, 2, {"dice": 0.7})
    assert isinstance(from_finetune_dict({"stage": "evaluate", "when": "before"}), StageProgress)
    assert from_finetune_dict({"stage": "done", "checkpoint": "x", "seconds": 1.0}) is None


def test_finetuning_refuses_too_few_corrected_frames(tmp_path):
    writer = DatasetWriter(tmp_path / "corrected")
    mask = np.zeros((32, 32), bool)
    mask[8:20, 8:20] = True
    for i in range(MIN_CORRECTED_FRAMES - 1):
        writer.add(np.full((32, 32), 10 * i, np.uint8), mask, source=f"frame{i}")
    with pytest.raises(ValueError, match=f"needs at least {MIN_CORRECTED_FRAMES}"):
        finetune(FinetuneConfig(str(tmp_path / "no-checkpoint-needed.pt"), str(tmp_path / "corrected")))
