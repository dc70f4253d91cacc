"""The prompt-model file: LiteMedSAM weights, the network's dimensions and where the weights came from.

``{"format": "thyroid-studio-prompt-model", "format_version", "meta", "state_dict"}``,
written and read through checkpoint.py's :func:`write_payload` and
:func:`read_payload` (``torch.load(weights_only=True)``: a stranger's file cannot
run code; every problem is a :class:`CheckpointError` naming the file).

A sibling format rather than a kind of segmentation checkpoint: a prompt model
segments what a box points at, not a whole frame, so it must never be offered
where a segmentation checkpoint is expected. With its own ``format`` string,
``load_checkpoint`` (``segment --model``, the models dialog, ``list_models``)
refuses it and :func:`load_prompt_model` refuses segmentation checkpoints, each
with a message that names the format found.
"""
from __future__ import annotations

import datetime as _dt
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from .checkpoint import CheckpointError, float_state, read_payload, write_payload
from .nets.litemedsam import LiteMedSAM, LiteMedSAMConfig

PROMPT_FORMAT = "thyroid-studio-prompt-model"
PROMPT_FORMAT_VERSION = 1
ARCH = "litemedsam"


@dataclass
class PromptModelMeta:
    """What a prompt-model file says about itself; ``config`` rebuilds the network."""

    name: str = ARCH
    arch: str = ARCH
    config: dict[str, Any] = field(default_factory=lambda: LiteMedSAMConfig().to_dict())
    source: str = ""  # where the weights came from (package, version, file)
    source_sha256: str = ""  # of the file the weights were converted from
    licence: str = ""
    created: str = field(default_factory=lambda: _dt.date.today().isoformat())
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PromptModelMeta":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def save_prompt_model(path: str | os.PathLike, model: LiteMedSAM, meta: PromptModelMeta, half: bool = True) -> Path:
    """Write the model atomically; ``half`` (the default) stores float16, restored to float32 on load."""
    meta = PromptModelMeta.from_dict({**meta.to_dict(), "config": model.config.to_dict()})
    payload = {"format": PROMPT_FORMAT, "format_version": PROMPT_FORMAT_VERSION, "meta": meta.to_dict()}
    return write_payload(path, payload, model, half)


def _read(path: Path) -> dict[str, Any]:
    return read_payload(path, PROMPT_FORMAT, PROMPT_FORMAT_VERSION, what="Thyroid Studio prompt model")


def _meta(path: Path, payload: dict[str, Any]) -> PromptModelMeta:
    try:
        meta = PromptModelMeta.from_dict(payload["meta"])
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: metadata incomplete or malformed: {exc}") from exc
    if meta.arch != ARCH:
        raise CheckpointError(f"{path}: unknown prompt-model architecture {meta.arch!r} (this version reads {ARCH!r})")
    return meta


def read_prompt_meta(path: str | os.PathLike) -> PromptModelMeta:
    """Only the metadata (the file is still validated)."""
    path = Path(path)
    return _meta(path, _read(path))


def load_prompt_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[LiteMedSAM, PromptModelMeta]:
    """Rebuild the network from the file's config, load its weights, return it in eval mode with its metadata."""
    path = Path(path)
    payload = _read(path)
    meta = _meta(path, payload)
    try:
        model = LiteMedSAM(LiteMedSAMConfig.from_dict(meta.config))
        state = float_state(payload)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"{path}: metadata or weights malformed: {exc}") from exc
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not match the network its metadata describes: {exc}") from exc
    return model.to(device).eval(), meta
