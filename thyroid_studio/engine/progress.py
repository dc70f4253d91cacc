"""What long jobs report while they run: small events instead of dicts keyed by strings.

Training, fine-tuning and the batch loop call ``progress(event)`` with these; the CLI
prints them, the app's dialogs draw them (across a process boundary: they pickle).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class StageProgress:
    """A named stage began (e.g. "reading frames", "scoring before fine-tuning")."""

    text: str


@dataclass(frozen=True)
class StepProgress:
    """One optimisation step finished."""

    epoch: int  # 1-based
    epochs: int
    step: int  # 1-based within the epoch
    steps: int
    loss: float


@dataclass(frozen=True)
class EpochProgress:
    """An epoch finished and was validated; ``metrics`` is its row of metrics.jsonl."""

    epoch: int  # 0 = before the first epoch (fine-tuning scores the source model)
    epochs: int
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchProgress:
    """Frames done out of all frames of a batch segmentation (a failed file counts one)."""

    done: int
    total: int
