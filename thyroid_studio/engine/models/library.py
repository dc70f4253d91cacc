"""Where checkpoints live and which ones are the defaults.

Shipped checkpoints are in the repository's ``models/`` folder (or
``$THYROID_STUDIO_MODELS``); models the user trains or fine-tunes go to the
user folder (``$THYROID_STUDIO_HOME/models``, default
``~/.local/share/thyroid-studio/models``). ``models/defaults.json`` names the
default checkpoint for each role: ``"trfe"`` (red contour) and ``"unet"``
(yellow contour).
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..io.paths import PROJECT_ROOT
from .checkpoint import CheckpointError, ModelMeta, OtherFormatError, read_meta
from .prompt_checkpoint import PROMPT_FORMAT
from .roles import MODEL_ROLES, PRIMARY_ROLE


def shipped_dir() -> Path:
    return Path(os.environ.get("THYROID_STUDIO_MODELS", PROJECT_ROOT / "models"))


def user_home() -> Path:
    return Path(os.environ.get("THYROID_STUDIO_HOME", Path.home() / ".local" / "share" / "thyroid-studio"))


def user_dir() -> Path:
    return user_home() / "models"


@dataclass(frozen=True)
class ModelEntry:
    path: Path
    meta: ModelMeta
    shipped: bool

    @property
    def card(self) -> Path | None:
        card = self.path.with_suffix(".md")
        return card if card.is_file() else None


def list_models(on_problem: Callable[[str], None] | None = None) -> list[ModelEntry]:
    """Every valid checkpoint in the shipped and user folders. A file that is not one (truncated, foreign,
    crafted metadata) is skipped, and ``on_problem`` receives one line saying which and why; a prompt model
    (the shipped LiteMedSAM, a sibling format listed by its own card) is skipped without a word."""
    entries = []
    for folder, shipped in ((shipped_dir(), True), (user_dir(), False)):
        try:
            paths = sorted(folder.glob("*.pt")) if folder.is_dir() else []
        except OSError as exc:
            paths = []
            if on_problem:
                on_problem(f"{folder}: cannot be listed ({exc.strerror or exc})")
        for path in paths:
            try:
                entries.append(ModelEntry(path, read_meta(path), shipped))
            except OtherFormatError as exc:
                if on_problem and exc.found != PROMPT_FORMAT:
                    on_problem(str(exc))
            except CheckpointError as exc:
                if on_problem:
                    on_problem(str(exc))
    return entries


def default_model(role: str = PRIMARY_ROLE) -> Path:
    """The shipped default checkpoint for ``role`` ("trfe" or "unet"); CheckpointError when defaults.json
    is missing, unreadable or names no model for the role."""
    if role not in MODEL_ROLES:
        raise ValueError(f"unknown model role {role!r}; choose one of {', '.join(MODEL_ROLES)}")
    defaults = shipped_dir() / "defaults.json"
    if not defaults.is_file():
        raise CheckpointError(f"no shipped models: {defaults} is missing; pass --model FILE")
    try:
        name = json.loads(defaults.read_text(encoding="utf-8"))[role]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{defaults}: names no {role} model ({type(exc).__name__}: {exc}); pass --model FILE") from exc
    if not isinstance(name, str) or not name:
        raise CheckpointError(f"{defaults}: the {role} entry {name!r} is not a file name; pass --model FILE")
    return shipped_dir() / name


def resolve_model(name_or_path: str | os.PathLike | None, role: str = PRIMARY_ROLE) -> Path:
    """A checkpoint path from a file path, a model name (file stem in a model folder) or ``None`` (the default)."""
    if name_or_path is None:
        return default_model(role)
    path = Path(name_or_path)
    if path.is_file():
        return path
    for folder in (shipped_dir(), user_dir()):
        candidate = folder / f"{path.name}.pt" if path.suffix != ".pt" else folder / path.name
        if candidate.is_file():
            return candidate
    names = ", ".join(e.path.stem for e in list_models()) or "none"
    raise CheckpointError(f"no model {str(name_or_path)!r}: not a file nor a known model name (known: {names})")


PROMPT_MODEL_FILE = "litemedsam.pt"  # a prompt-model file (prompt_checkpoint.py), not a segmentation checkpoint


def default_prompt_model() -> Path:
    """The shipped LiteMedSAM box-prompt model; a CheckpointError names the file when it is missing."""
    path = shipped_dir() / PROMPT_MODEL_FILE
    if not path.is_file():
        raise CheckpointError(f"no shipped prompt model: {path} is missing (tools/convert_litemedsam.py makes it)")
    return path
