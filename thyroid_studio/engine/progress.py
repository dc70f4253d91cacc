"""Progress events of long jobs (batch segmentation, training, fine-tuning) as small dataclasses.

A job calls ``progress(event)`` with one of these; the CLI prints them and the app's job
dialogs draw them, both matching on the type rather than on keys of a dict.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union


@dataclass(frozen=True)
class BatchProgress:
    done: int  # frames finished
    total: int


@dataclass(frozen=True)
class StepProgress:
    """One optimiser step; counts are 1-based."""

    epoch: int
    epochs: int
    step: int
    steps: int
    loss: float


@dataclass(frozen=True)
class EpochProgress:
    """Validation after ``epoch`` epochs (0: before the first): the run's metrics row for training,
    ``{"held_out_dice": 0.71}`` for fine-tuning."""

    epoch: int
    epochs: int
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StageProgress:
    """A phase begins (e.g. "Measuring Dice before fine-tuning"): a status line."""

    text: str


@dataclass(frozen=True)
class Message:
    """A line for the job's log, e.g. a file that failed while the job goes on."""

    text: str


@dataclass(frozen=True)
class Finished:
    """The end of a job. ``status``: "finished" or "stopped" (cancelled: nothing written)."""

    status: str
    seconds: float
    checkpoint: str | None = None  # the model written, for training and fine-tuning
    table: dict[str, dict[str, Any]] = field(default_factory=dict)  # before/after scores of fine-tuning


ProgressEvent = Union[BatchProgress, StepProgress, EpochProgress, StageProgress, Message, Finished]

