"""Too few corrected frames stop fine-tuning before it starts (before even reading the checkpoint)."""
from __future__ import annotations

import numpy as np
import pytest

from thyroid_studio.engine.datasets.writer import DatasetWriter
from thyroid_studio.engine.training.finetuning import MIN_CORRECTED_FRAMES, FinetuneConfig, finetune


def test_finetuning_refuses_too_few_corrected_frames(tmp_path):
    writer = DatasetWriter(tmp_path / "corrected")
    mask = np.zeros((32, 32), bool)
    mask[8:20, 8:20] = True
    for i in range(MIN_CORRECTED_FRAMES - 1):
        writer.add(np.full((32, 32), 10 * i, np.uint8), mask, source=f"frame{i}")
    with pytest.raises(ValueError, match=f"needs at least {MIN_CORRECTED_FRAMES}"):
        finetune(FinetuneConfig(str(tmp_path / "no-checkpoint-needed.pt"), str(tmp_path / "corrected")))
