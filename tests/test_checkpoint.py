"""Checkpoint round trip, half-precision storage, and clear errors for bad files."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from thyroid_studio.engine.checkpoint import CheckpointError, ModelMeta, load_checkpoint, read_meta, save_checkpoint
from thyroid_studio.engine.architectures import build_model


def _saved(tmp_path: Path, half: bool = False) -> tuple[torch.nn.Module, Path]:
    torch.manual_seed(1)
    model = build_model("trfe-b", width=4).eval()
    meta = ModelMeta(arch="trfe-b", width=4, input_size=(64, 64), threshold=0.4, metrics={"dice": 0.8})
    return model, save_checkpoint(tmp_path / "m.pt", model, meta, half=half)


def test_round_trip_restores_weights_and_meta(tmp_path: Path) -> None:
    model, path = _saved(tmp_path)
    loaded, meta = load_checkpoint(path)
    assert (meta.arch, meta.width, meta.input_size, meta.threshold) == ("trfe-b", 4, (64, 64), 0.4)
    assert meta.metrics == {"dice": 0.8} and read_meta(path) == meta
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        assert torch.equal(model(x)["nodule"], loaded(x)["nodule"])
    assert not loaded.training
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temporary file left


def test_half_storage_is_smaller_and_loads_as_float32(tmp_path: Path) -> None:
    _, full = _saved(tmp_path)
    half = save_checkpoint(tmp_path / "h.pt", *load_checkpoint(full), half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    loaded, _ = load_checkpoint(half)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())


def test_truncated_file_is_a_clear_error(tmp_path: Path) -> None:
    _, path = _saved(tmp_path)
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(path)


def test_foreign_files_are_rejected(tmp_path: Path) -> None:
    bare = tmp_path / "bare.pt"
    torch.save(build_model("unet", width=4).state_dict(), bare)
    with pytest.raises(CheckpointError, match="not a Thyroid Studio checkpoint"):
        load_checkpoint(bare)
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(text)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_weights_that_do_not_fit_the_architecture(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "m.pt", build_model("unet", width=4), ModelMeta(arch="trfe-a", width=4))
    with pytest.raises(CheckpointError, match="do not match a trfe-a"):
        load_checkpoint(path)


def test_saved_file_gets_ordinary_permissions(tmp_path: Path) -> None:
    """Temporary files are created 0600; the renamed checkpoint must be readable like any file the user writes."""
    import os

    _, path = _saved(tmp_path)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
