"""Paths recorded in checkpoints and cards are relative to the project, never a machine's absolute path.

A run trained on ``/home/me/thyroid-studio/../shared/data/ddti`` records
``../shared/data/ddti``, so a card reads the same everywhere and fine-tuning on another
machine with the same layout finds the original validation frames.
"""
from __future__ import annotations

import os
import shlex
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def project_relative(path: str | os.PathLike) -> str:
    """``path`` relative to the project root (with ``..`` where it lies beside it), in POSIX form."""
    return Path(os.path.relpath(Path(path).resolve(), PROJECT_ROOT)).as_posix()


def from_project(recorded: str) -> Path:
    """A recorded path back to a real one: relative paths are taken from the project root."""
    path = Path(recorded)
    return path if path.is_absolute() else (PROJECT_ROOT / path).resolve()


def relative_command(command: str) -> str:
    """A recorded command line as it reads on any machine: absolute paths made project-relative
    (``--out=/abs`` too), and ``python -m thyroid_studio``'s ``__main__.py`` named ``thyroid-studio``."""
    def relative(word: str) -> str:
        option, equals, value = word.partition("=")
        if equals and option.startswith("--") and os.path.isabs(value):
            return f"{option}={project_relative(value)}"
        return project_relative(word) if os.path.isabs(word) else word

    words = shlex.split(command)
    if words and words[0] == "__main__.py":
        words[0] = "thyroid-studio"
    return " ".join(shlex.quote(relative(word)) for word in words)
