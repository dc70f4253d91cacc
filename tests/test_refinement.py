"""The refinement stage: LiteMedSAM prompted with the box of the first stage's largest component."""
from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from thyroid_studio import cli
from thyroid_studio.engine.inference.prompting import PromptSegmenter, box_around
from thyroid_studio.engine.inference.refinement import RefinedSegmenter, with_refinement
from thyroid_studio.engine.inference.segmenter import Segmentation
from thyroid_studio.engine.models.architectures import build_model
from thyroid_studio.engine.models.checkpoint import CheckpointError, ModelMeta, save_checkpoint
from thyroid_studio.engine.models.prompt_checkpoint import PromptModelMeta, save_prompt_model

from prompt_models import BoxEcho, tiny_litemedsam


class FixedFirstStage:
    """A first stage that returns given masks (what a Segmenter offers the refinement)."""

    has_gland = True
    device = torch.device("cpu")

    def __init__(self, masks: list[np.ndarray]) -> None:
        self.meta = ModelMeta("trfe-a", 4, name="first")
        self.masks = masks

    def segment(self, images):
        gland = np.ones(self.masks[0].shape, bool)
        return [Segmentation(m.astype(np.float32), m, gland.astype(np.float32), gland) for m in self.masks[: len(images)]]


def test_refined_mask_is_the_prompt_for_the_largest_component_box():
    first = np.zeros((120, 160), bool)
    first[30:70, 40:90] = True  # the largest component
    first[100:105, 140:150] = True  # a small one, ignored
    image = np.full((120, 160), 100, np.uint8)
    image[-1, -1] = 0
    refined = RefinedSegmenter(FixedFirstStage([first, np.zeros_like(first)]), PromptSegmenter(BoxEcho(), device="cpu"),
                               margin=6)
    result, empty = refined.segment([image, image])
    assert box_around(result.nodule_mask, 0) == pytest.approx((34, 24, 96, 76), abs=1)  # BoxEcho: the prompt box itself
    assert np.array_equal(result.nodule_mask, result.nodule_prob > 0.5)
    assert result.gland_mask.all()  # the first stage's gland is kept
    assert not empty.nodule_mask.any()  # nothing found: nothing to prompt
    assert refined.meta.name == "first+medsam" and refined.has_gland


def test_with_refinement(tmp_path, monkeypatch):
    first = FixedFirstStage([np.zeros((4, 4), bool)])
    assert with_refinement(first, "none") is first
    with pytest.raises(ValueError, match="unknown refinement 'sam'"):
        with_refinement(first, "sam")
    monkeypatch.setenv("THYROID_STUDIO_MODELS", str(tmp_path))
    with pytest.raises(CheckpointError, match="litemedsam.pt is missing"):
        with_refinement(first, "medsam")


def test_segment_refine_medsam(tmp_path, monkeypatch):
    shipped = tmp_path / "models"
    save_prompt_model(shipped / "litemedsam.pt", tiny_litemedsam(), PromptModelMeta(name="tiny"))
    monkeypatch.setenv("THYROID_STUDIO_MODELS", str(shipped))
    torch.manual_seed(0)
    meta = ModelMeta("trfe-a", 4, input_size=(64, 64), name="trfe-tiny", threshold=1e-6)  # a tiny threshold: never empty
    checkpoint = save_checkpoint(tmp_path / "trfe.pt", build_model("trfe-a", 4), meta)
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.random.default_rng(0).integers(0, 255, (90, 120), dtype=np.uint8))
    out = tmp_path / "out"
    assert cli.main(["segment", str(folder), "--out", str(out), "--model", str(checkpoint), "--device", "cpu",
                     "--refine", "medsam"]) == 0
    with open(out / "segmentation.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["model"] for r in rows] == ["trfe-tiny+medsam"]
    assert cv2.imread(str(Path(out / "a.png")), cv2.IMREAD_UNCHANGED).shape == (90, 120)
