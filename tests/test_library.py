"""The model library's shipped models: they segment DDTI frames."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from thyroid_studio.engine.datasets.layouts import open_dataset
from thyroid_studio.engine.inference.segmenter import Segmenter
from thyroid_studio.engine.metrics import binary_metrics
from thyroid_studio.engine.models.checkpoint import load_checkpoint
from thyroid_studio.engine.models.library import default_model
from thyroid_studio.engine.training.frameset import read_sample


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
