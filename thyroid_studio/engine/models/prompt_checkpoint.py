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

from ..nets.litemedsam import LiteMedSAM, LiteMedSAMConfig
from .checkpoint import (MAX_INPUT_SIDE, Check, CheckpointError, first_problem, float_state, number_between, of_type,
                         read_payload, whole_number, whole_numbers, write_payload)

PROMPT_FORMAT = "thyroid-studio-prompt-model"
PROMPT_FORMAT_VERSION = 1
ARCH = "litemedsam"

# The schema of the metadata and of the network's dimensions, checked before anything is built. The bounds are
# generous (LiteMedSAM's own values are far inside them); the network is then built on the "meta" device (no
# memory) and its weights' shapes compared with the file's before the real one is allocated, so a file whose
# dimensions describe a network bigger than its weights cannot make the program allocate it.
META_CHECKS: dict[str, Check] = {name: of_type(str, "text") for name in
                                 ("name", "arch", "source", "source_sha256", "licence", "created", "notes")}
META_CHECKS["config"] = of_type(dict, "a mapping of the network's dimensions")
_STAGES = len(LiteMedSAMConfig().embed_dims)
CONFIG_CHECKS: dict[str, Check] = {
    "image_size": whole_number(32, MAX_INPUT_SIDE),
    "embed_dims": whole_numbers(_STAGES, 1, 1024),
    "depths": whole_numbers(_STAGES, 1, 16),
    "num_heads": whole_numbers(_STAGES, 1, 64),
    "window_sizes": whole_numbers(_STAGES, 1, 64),
    "mlp_ratio": number_between(0.25, 16),
    "mbconv_expand_ratio": number_between(0.25, 16),
    "local_conv_size": whole_number(1, 15),
    "prompt_dim": whole_number(1, 1024),
    "mask_in_chans": whole_number(1, 256),
    "decoder_depth": whole_number(1, 16),
    "decoder_heads": whole_number(1, 64),
    "decoder_mlp_dim": whole_number(1, 16384),
    "num_multimask_outputs": whole_number(1, 16),
    "iou_head_depth": whole_number(1, 16),
    "iou_head_hidden_dim": whole_number(1, 4096),
}


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
    data = payload.get("meta")
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: metadata is a {type(data).__name__}, not a mapping")
    problem = first_problem(data, META_CHECKS) or first_problem(data.get("config", {}), CONFIG_CHECKS)
    if problem:
        raise CheckpointError(f"{path}: metadata {problem}")
    meta = PromptModelMeta.from_dict(data)
    if meta.arch != ARCH:
        raise CheckpointError(f"{path}: unknown prompt-model architecture {meta.arch!r} (this version reads {ARCH!r})")
    return meta


def _shape_problem(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor]) -> str | None:
    """How the file's weights differ from the network's (names and shapes), or None."""
    missing, unexpected = sorted(expected.keys() - found.keys()), sorted(found.keys() - expected.keys())
    resized = sorted(k for k in expected.keys() & found.keys() if expected[k].shape != found[k].shape)
    parts = [f"{what} {', '.join(names[:3])}{' ...' if len(names) > 3 else ''}"
             for what, names in (("missing", missing), ("unexpected", unexpected), ("other shapes", resized)) if names]
    return "; ".join(parts) or None


def read_prompt_meta(path: str | os.PathLike) -> PromptModelMeta:
    """Only the metadata (the file is still validated)."""
    path = Path(path)
    return _meta(path, _read(path))


def load_prompt_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[LiteMedSAM, PromptModelMeta]:
    """Rebuild the network from the file's config, load its weights, return it in eval mode with its metadata."""
    path = Path(path)
    payload = _read(path)
    meta = _meta(path, payload)
    state = float_state(payload)
    try:
        config = LiteMedSAMConfig.from_dict(meta.config)
        with torch.device("meta"):  # shapes only, nothing allocated
            skeleton = LiteMedSAM(config)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: metadata describes no LiteMedSAM network: {exc}") from exc
    if problem := _shape_problem(skeleton.state_dict(), state):
        raise CheckpointError(f"{path}: weights do not match the network its metadata describes: {problem}")
    model = LiteMedSAM(config)
    model.load_state_dict(state)
    return model.to(device).eval(), meta
