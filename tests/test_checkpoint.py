"""Checkpoint round trip, half-precision storage, and clear errors for bad files."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from thyroid_studio.engine.models.architectures import build_model
from thyroid_studio.engine.models.checkpoint import (CheckpointError, ModelMeta, load_checkpoint, read_meta,
                                                     save_checkpoint)


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


# ---------------------------------------------------------------- crafted metadata: one schema, one error type


def _crafted(tmp_path: Path, change) -> Path:
    """A valid tiny checkpoint whose loaded payload ``change(payload)`` alters before it is saved again."""
    _, path = _saved(tmp_path)
    payload = torch.load(path, weights_only=True)
    change(payload)
    torch.save(payload, path)
    return path


def _set_meta(key, value):
    return lambda payload: payload["meta"].__setitem__(key, value)


CRAFTED = [
    ("meta a string", lambda p: p.__setitem__("meta", "trfe-b"), "metadata is a str, not a mapping"),
    ("state_dict a list", lambda p: p.__setitem__("state_dict", [1, 2]), "state_dict is not a mapping of parameter names"),
    ("state_dict of strings", lambda p: p.__setitem__("state_dict", {"w": "x"}), "state_dict is not a mapping"),
    ("version a string", lambda p: p.__setitem__("format_version", "2"), "format_version '2' is not a format version"),
    ("version newer", lambda p: p.__setitem__("format_version", 99), "written by a newer Thyroid Studio"),
    ("no arch", lambda p: p["meta"].pop("arch"), "metadata has no 'arch'"),
    ("unknown arch", _set_meta("arch", "resnet"), "metadata 'arch' must be one of unet, mtnet"),
    ("unknown contrast", _set_meta("contrast", "sharpen"), "metadata 'contrast' must be one of none, equalize, clahe"),
    ("negative input size", _set_meta("input_size", [-64, 64]), "metadata 'input_size' must be"),
    ("odd input size", _set_meta("input_size", [100, 100]), "a multiple of 16"),
    ("input size a number", _set_meta("input_size", 224), "metadata 'input_size' must be"),
    ("threshold text", _set_meta("threshold", "abc"), "metadata 'threshold' must be a number between 0 and 1"),
    ("threshold nan", _set_meta("threshold", float("nan")), "metadata 'threshold' must be"),
    ("threshold 1", _set_meta("threshold", 1.0), "metadata 'threshold' must be"),
    ("width 100000", _set_meta("width", 100000), "metadata 'width' must be a whole number from 1 to 128"),
    ("width 0", _set_meta("width", 0), "metadata 'width'"),
    ("width true", _set_meta("width", True), "metadata 'width'"),
    ("width float", _set_meta("width", 4.0), "metadata 'width'"),
    ("channels 2", _set_meta("in_channels", 2), "metadata 'in_channels' must be one of 1, 3"),
    ("std zero", _set_meta("std", [0.2, 0.0, 0.2]), "metadata 'std' must be 1 or 3 finite numbers above 0"),
    ("mean of one for three channels", _set_meta("mean", [0.5]), "one value per input channel"),
    ("keep_aspect text", _set_meta("keep_aspect", "yes"), "metadata 'keep_aspect' must be true or false"),
    ("metrics a list", _set_meta("metrics", [0.8]), "metadata 'metrics' must be a mapping"),
    ("name a number", _set_meta("name", 7), "metadata 'name' must be text"),
]


@pytest.mark.parametrize(("change", "message"), [c[1:] for c in CRAFTED], ids=[c[0] for c in CRAFTED])
def test_crafted_metadata_is_one_clear_checkpoint_error(tmp_path: Path, monkeypatch, change, message) -> None:
    path = _crafted(tmp_path, change)
    monkeypatch.setattr("thyroid_studio.engine.models.checkpoint.build_model", lambda *a: pytest.fail("built a network"))
    for reader in (read_meta, load_checkpoint):
        with pytest.raises(CheckpointError, match=f"^{path}: .*{message}") as caught:
            reader(path)
        assert "\n" not in str(caught.value)


def test_every_metadata_field_has_exactly_one_check() -> None:
    """Adding a ModelMeta field means adding its validator to META_CHECKS (one entry)."""
    from dataclasses import fields

    from thyroid_studio.engine.models.checkpoint import META_CHECKS

    assert set(META_CHECKS) == {f.name for f in fields(ModelMeta)}


def test_saved_metadata_passes_its_own_schema(tmp_path: Path) -> None:
    meta = ModelMeta("unet", 4, input_size=(32, 48), in_channels=1, mean=(0.5,), std=(0.25,), contrast="clahe",
                     keep_aspect=True, threshold=0.3, training={"data": {}}, metrics={"nodule": {"dice": 0.5}})
    path = save_checkpoint(tmp_path / "u.pt", build_model("unet", 4, in_channels=1), meta)
    assert read_meta(path) == meta and load_checkpoint(path)[1] == meta
