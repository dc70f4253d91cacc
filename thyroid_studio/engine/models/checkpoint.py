"""The checkpoint file: weights plus the metadata needed to use them correctly.

One ``.pt`` file holds ``{"format", "format_version", "meta", "state_dict"}``.
It is read with ``torch.load(weights_only=True)`` so a file from a stranger
cannot run code, then checked against one schema (:data:`META_CHECKS`, one
validator per :class:`ModelMeta` field) before anything is built from it, and
every way a file can be wrong becomes a :class:`CheckpointError` that names the
file and the problem. The prompt-model file (``prompt_checkpoint.py``) is a
sibling format written and read through the same :func:`write_payload` and
:func:`read_payload`.
"""
from __future__ import annotations

import datetime as _dt
import io
import math
import os
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..findings.fields import FIELDS
from ..io.files import write_bytes_atomic
from ..nets.blocks import NORMS
from ..nets.encoders import ENCODERS, IMAGENET_MEAN, IMAGENET_STD, encoder_spec
from ..preprocessing import CONTRAST_MODES
from .architectures import ARCHITECTURES, MAX_WIDTH, arch_spec, build_model

FORMAT = "thyroid-studio-checkpoint"
FORMAT_VERSION = 1
MIN_INPUT_SIDE, MAX_INPUT_SIDE = 32, 2048  # pixels per side of the network input
INPUT_MULTIPLE = 16  # the plain encoder's four 2x poolings; deeper encoders need their deepest stride (checked too)


class CheckpointError(ValueError):
    """A checkpoint file is missing, truncated, foreign or inconsistent."""


class OtherFormatError(CheckpointError):
    """A file of another format than the one asked for; ``found`` is its ``format`` string (None: not ours)."""

    def __init__(self, message: str, found: str | None) -> None:
        super().__init__(message)
        self.found = found


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
    norm: str = "batch"  # the decoders' normalisation (nets.blocks.NORMS)
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
        return float(value) if is_finite_number(value) and 0 <= value <= 1 else None  # a crafted NaN or 7 shows as "-"

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


def network_for(meta: ModelMeta) -> nn.Module:
    """The untrained network ``meta`` describes (what its weights load into)."""
    return build_model(meta.arch, meta.width, meta.in_channels, meta.encoder, meta.findings, meta.norm)


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
        raise CheckpointError(f"{path}: {'is a folder, not a checkpoint file' if path.is_dir() else 'no such checkpoint file'}")
    try:
        with warnings.catch_warnings():  # torch warns about a foreign file's pickle protocol before refusing it
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        # torch's first sentence says what is wrong; the rest advises weights_only=False, which would run the file's code
        reason = str(exc).strip().split(". ")[0].splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{path}: not a readable checkpoint (truncated, corrupt or not a PyTorch file): {reason}"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != fmt:
        found = payload.get("format") if isinstance(payload, dict) else None
        found = found if isinstance(found, str) else None
        kind = f"a {found!r:.60} file" if found else "a bare state_dict or another program's file"
        raise OtherFormatError(f"{path}: not a {what} ({kind})", found)
    found_version = payload.get("format_version")
    if not isinstance(found_version, int) or isinstance(found_version, bool) or found_version < 1:
        raise CheckpointError(f"{path}: format_version {found_version!r:.40} is not a format version (a whole number from 1)")
    if found_version > version:
        raise CheckpointError(f"{path}: written by a newer Thyroid Studio (format {found_version})")
    state = payload.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise CheckpointError(f"{path}: state_dict is not a mapping of parameter names to tensors")
    viewed = next((k for k, v in state.items() if v.numel() * v.element_size() > v.untyped_storage().nbytes()), None)
    if viewed is not None:  # e.g. one stored number expanded to billions: checking or converting it would allocate them
        raise CheckpointError(f"{path}: weight {viewed!r:.80} claims more values than the file stores")
    broken = next((k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())), None)
    if broken is not None:
        raise CheckpointError(f"{path}: weight {broken!r:.80} holds NaN or infinite values (a training that diverged?)")
    return payload


def float_state(payload: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The payload's ``state_dict`` with floating-point tensors as float32 (half-stored weights restored)."""
    return {k: v.float() if v.is_floating_point() else v for k, v in payload["state_dict"].items()}

# ---------------------------------------------------------------- the schema

Check = Callable[[Any], "str | None"]  # the problem with a value, or None when it is acceptable


def is_finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_whole_number(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def whole_number(low: int, high: int) -> Check:
    def check(value: Any) -> str | None:
        return None if is_whole_number(value, low, high) else f"must be a whole number from {low} to {high}"
    return check


def whole_numbers(count: int, low: int, high: int) -> Check:
    """A list of ``count`` whole numbers, each from ``low`` to ``high``."""
    def check(value: Any) -> str | None:
        ok = isinstance(value, (list, tuple)) and len(value) == count and all(is_whole_number(v, low, high) for v in value)
        return None if ok else f"must be {count} whole numbers, each from {low} to {high}"
    return check


def number_between(low: float, high: float) -> Check:
    """A finite number from ``low`` to ``high`` (inclusive)."""
    def check(value: Any) -> str | None:
        return None if is_finite_number(value) and low <= value <= high else f"must be a number from {low:g} to {high:g}"
    return check


def one_of(choices) -> Check:
    def check(value: Any) -> str | None:
        ok = isinstance(value, (str, int)) and not isinstance(value, bool) and value in choices
        return None if ok else f"must be one of {', '.join(map(str, choices))}"
    return check


def of_type(kind: type, description: str) -> Check:
    def check(value: Any) -> str | None:
        return None if isinstance(value, kind) else f"must be {description}"
    return check


def first_problem(data: dict[str, Any], checks: dict[str, Check]) -> str | None:
    """``'<field>' <problem>, got <value>`` for the first field of ``data`` its check refuses (absent fields pass)."""
    for name, check in checks.items():
        if name in data and (problem := check(data[name])) is not None:
            return f"{name!r} {problem}, got {data[name]!r:.60}"
    return None


def _probability(value: Any) -> str | None:
    return None if is_finite_number(value) and 0 < value < 1 else "must be a number between 0 and 1 (exclusive)"


def _input_size(value: Any) -> str | None:
    sides_ok = whole_numbers(2, MIN_INPUT_SIDE, MAX_INPUT_SIDE)(value) is None and all(v % INPUT_MULTIPLE == 0 for v in value)
    return None if sides_ok else (
        f"must be [height, width], each a multiple of {INPUT_MULTIPLE} from {MIN_INPUT_SIDE} to {MAX_INPUT_SIDE}"
    )


def _per_channel(positive: bool) -> Check:
    def check(value: Any) -> str | None:
        ok = isinstance(value, (list, tuple)) and len(value) in (1, 3) and all(
            is_finite_number(v) and (v > 0 or not positive) for v in value
        )
        return None if ok else f"must be 1 or 3 finite numbers{' above 0' if positive else ''}"
    return check


def _vocabulary(value: Any) -> str | None:
    """Findings heads: names from findings.FIELDS, each with two or more distinct classes of that field (a head
    whose classes the app does not know would give findings nothing can show or score)."""
    ok = isinstance(value, dict) and all(
        name in FIELDS and isinstance(classes, list) and len(classes) >= 2 and len(set(classes)) == len(classes)
        and all(c in FIELDS[name] for c in classes) for name, classes in value.items()
    )
    return None if ok else f"must map finding names ({', '.join(FIELDS)}) to two or more of their classes"


META_CHECKS: dict[str, Check] = {
    "arch": one_of(tuple(ARCHITECTURES)),
    "width": whole_number(1, MAX_WIDTH),
    "encoder": one_of(tuple(ENCODERS)),
    "findings": _vocabulary,
    "input_size": _input_size,
    "in_channels": one_of((1, 3)),
    "mean": _per_channel(positive=False),
    "std": _per_channel(positive=True),
    "threshold": _probability,
    "keep_aspect": of_type(bool, "true or false"),
    "norm": one_of(NORMS),
    "contrast": one_of(CONTRAST_MODES),
    "name": of_type(str, "text"),
    "version": of_type(str, "text"),
    "created": of_type(str, "text"),
    "training": of_type(dict, "a mapping"),
    "metrics": of_type(dict, "a mapping"),
    "notes": of_type(str, "text"),
}
REQUIRED_META = ("arch", "width")


def check_meta(data: Any) -> ModelMeta:
    """A ModelMeta from a checkpoint's metadata dict, each field checked by its entry in :data:`META_CHECKS`
    (unknown keys are ignored); ValueError naming the first bad field."""
    if not isinstance(data, dict):
        raise ValueError(f"metadata is a {type(data).__name__}, not a mapping")
    for name in REQUIRED_META:
        if name not in data:
            raise ValueError(f"metadata has no {name!r}")
    if problem := first_problem(data, META_CHECKS):
        raise ValueError(f"metadata {problem}")
    meta = ModelMeta.from_dict(data)
    if len(meta.mean) != meta.in_channels or len(meta.std) != meta.in_channels:
        raise ValueError(f"metadata 'mean' and 'std' need one value per input channel ({meta.in_channels})")
    stride = encoder_spec(meta.encoder).deepest_stride
    if any(side % stride for side in meta.input_size):
        raise ValueError(f"metadata 'input_size' {list(meta.input_size)} must divide by {stride} for the {meta.encoder} encoder")
    return meta


def _read_checked(path: Path) -> tuple[ModelMeta, dict[str, torch.Tensor]]:
    """The schema-checked metadata and the state_dict of a segmentation checkpoint."""
    payload = read_payload(path)
    try:
        return check_meta(payload.get("meta")), payload["state_dict"]
    except ValueError as exc:
        raise CheckpointError(f"{path}: {exc}") from exc


def read_meta(path: str | os.PathLike) -> ModelMeta:
    """Read only the metadata of a checkpoint (still validates the whole file)."""
    return _read_checked(Path(path))[0]


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[nn.Module, ModelMeta]:
    """Rebuild the network, load its weights and return it in eval mode with its metadata."""
    path = Path(path)
    meta, state = _read_checked(path)
    model = network_for(meta)
    try:
        model.load_state_dict(float_state({"state_dict": state}))
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())  # torch lists every key on its own line
        raise CheckpointError(
            f"{path}: weights do not match a {meta.arch} ({meta.encoder} encoder) of width {meta.width}: {detail[:300]}"
        ) from exc
    return model.to(device).eval(), meta
