"""The checkpoint file: weights plus the metadata needed to use them correctly.

One ``.pt`` file holds ``{"format", "format_version", "meta", "state_dict"}``.
It is read with ``torch.load(weights_only=True)`` so a file from a stranger
cannot run code, and every way a file can be wrong becomes a
:class:`CheckpointError` that names the file and the problem. The prompt-model
file (``prompt_checkpoint.py``) is a sibling format written and read through
the same :func:`write_payload` and :func:`read_payload`.
"""
from __future__ import annotations

import datetime as _dt
import io
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .architectures import arch_spec, build_model
from .files import write_bytes_atomic
from .nets.encoders import IMAGENET_MEAN, IMAGENET_STD

FORMAT = "thyroid-studio-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file is missing, truncated, foreign or inconsistent."""


@dataclass
class ModelMeta:
    """Everything needed to rebuild a network and feed it frames as it was trained."""

    arch: str
    width: int
    encoder: str = "plain"  # a name in nets.ENCODERS
    findings: dict[str, list[str]] = field(default_factory=dict)  # classification heads: field -> classes; {} = none
    input_size: tuple[int, int] = (224, 224)  # (height, width) fed to the network
    in_channels: int = 3
    mean: tuple[float, ...] = IMAGENET_MEAN  # per channel, on pixels scaled to [0, 1]
    std: tuple[float, ...] = IMAGENET_STD
    threshold: float = 0.5  # on the sigmoid probability
    keep_aspect: bool = False  # letterbox into input_size instead of stretching
    contrast: str = "none"  # "none" | "equalize" | "clahe", applied before normalisation
    name: str = ""  # short identifier, e.g. "trfe-a-w16"
    version: str = "0"
    created: str = field(default_factory=lambda: _dt.date.today().isoformat())
    training: dict[str, Any] = field(default_factory=dict)  # data, split, recipe, command
    metrics: dict[str, Any] = field(default_factory=dict)  # validation metrics
    notes: str = ""

    @property
    def has_gland(self) -> bool:
        return arch_spec(self.arch).has_gland

    @property
    def has_prior(self) -> bool:
        return arch_spec(self.arch).has_prior

    @property
    def has_findings(self) -> bool:
        return bool(self.findings)

    @property
    def validation_dice(self) -> float | None:
        """Mean validation nodule Dice (0-1) as training records it in ``metrics["nodule"]["dice"]``."""
        nodule = self.metrics.get("nodule")
        value = nodule.get("dice") if isinstance(nodule, dict) else None
        return float(value) if isinstance(value, (int, float)) else None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["input_size"] = list(self.input_size)
        data["mean"], data["std"] = list(self.mean), list(self.std)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelMeta":
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in known}
        for key in ("input_size", "mean", "std"):
            if key in kwargs:
                kwargs[key] = tuple(kwargs[key])
        return cls(**kwargs)


def save_checkpoint(path: str | os.PathLike, model: nn.Module, meta: ModelMeta, half: bool = False) -> Path:
    """Write weights and metadata atomically (temporary file, then rename).

    ``half`` stores floating-point tensors as float16 to halve the file; they
    are restored to float32 on load.
    """
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "meta": meta.to_dict()}
    return write_payload(path, payload, model, half)


def write_payload(path: str | os.PathLike, payload: dict[str, Any], model: nn.Module, half: bool) -> Path:
    """Write ``payload`` plus the model's ``state_dict`` (floats as float16 if ``half``) atomically.

    Serialised in memory first, so the archive inside does not record the temporary file's
    name: the same weights and metadata always give the same bytes (and checksum).
    """
    state = {
        k: (v.detach().half() if half and v.is_floating_point() else v.detach()).cpu()
        for k, v in model.state_dict().items()
    }
    buffer = io.BytesIO()
    torch.save({**payload, "state_dict": state}, buffer)
    return write_bytes_atomic(path, buffer.getvalue())


def read_payload(
    path: Path, fmt: str = FORMAT, version: int = FORMAT_VERSION, what: str = "Thyroid Studio checkpoint"
) -> dict[str, Any]:
    """The dict of a ``fmt`` file, loaded without running code (weights_only); a CheckpointError otherwise."""
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise CheckpointError(
            f"{path}: not a readable checkpoint (truncated, corrupt or not a PyTorch file): {exc}"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != fmt:
        found = payload.get("format") if isinstance(payload, dict) else None
        kind = f"a {found!r} file" if isinstance(found, str) else "a bare state_dict or another program's file"
        raise CheckpointError(f"{path}: not a {what} ({kind})")
    if payload.get("format_version", 0) > version:
        raise CheckpointError(f"{path}: written by a newer Thyroid Studio (format {payload['format_version']})")
    return payload


def float_state(payload: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The payload's ``state_dict`` with floating-point tensors as float32 (half-stored weights restored)."""
    return {k: v.float() if v.is_floating_point() else v for k, v in payload["state_dict"].items()}


def read_meta(path: str | os.PathLike) -> ModelMeta:
    """Read only the metadata of a checkpoint (still validates the file)."""
    path = Path(path)
    try:
        return ModelMeta.from_dict(read_payload(path)["meta"])
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: metadata incomplete or malformed: {exc}") from exc


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[nn.Module, ModelMeta]:
    """Rebuild the network, load its weights and return it in eval mode with its metadata."""
    path = Path(path)
    payload = read_payload(path)
    try:
        meta = ModelMeta.from_dict(payload["meta"])
        model = build_model(meta.arch, meta.width, meta.in_channels, meta.encoder, meta.findings)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: metadata incomplete or malformed: {exc}") from exc
    state = float_state(payload)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not match a {meta.arch} of width {meta.width}: {exc}") from exc
    return model.to(device).eval(), meta
