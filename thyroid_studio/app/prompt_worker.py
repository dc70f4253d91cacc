"""Box prompts off the GUI thread: the shown frame's LiteMedSAM embedding computed in the background
as soon as the frame opens, boxes answered with proposed masks, and cine propagation as a job target.

One :class:`PromptWorker` thread (a ``request_thread.RequestThread``) holds the prompt model
(``engine.inference.prompting.PromptSegmenter``, loaded on first use from ``models/litemedsam.pt`` unless one is
given) and serves the newest request: a box on the shown frame first, else the shown frame's embedding.
A frame left before its embedding started is never embedded; one being embedded finishes (a forward pass cannot be interrupted) and
stays in the segmenter's cache for a step back. :func:`run_propagation` is the target of a
``workers.ThreadJob``: it reads the clip on its own thread and reports each frame's mask as a
:class:`PropagatedFrame` progress event.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from ..engine.inference.prompting import DEFAULT_MARGIN_PX, BoxXYXY, PromptSegmenter, propagate
from ..engine.io.frames import Frame, FrameReadError, count_frames, read_frames
from ..engine.models.checkpoint import CheckpointError
from ..engine.models.library import default_prompt_model
from ..engine.progress import ProgressEvent
from .request_thread import RequestThread


class PromptWorker(RequestThread):
    """Embeds the shown frame (:meth:`show_frame`) and answers boxes on it (:meth:`ask`), newest first."""

    embedded = Signal(object)  # key: the frame's embedding is ready, boxes on it are answered at once
    proposal = Signal(object, object, object)  # key, box, (H, W) bool mask
    failed = Signal(object, str)  # key, why a box got no answer (no prompt model, a box outside the frame)

    def __init__(self, parent: QObject | None = None, prompter: PromptSegmenter | None = None) -> None:
        super().__init__(parent)
        self._frame: tuple[Any, np.ndarray] | None = None  # to embed
        self._box: tuple[Any, np.ndarray, BoxXYXY] | None = None  # to answer
        self._load_lock = threading.Lock()
        self._prompter = prompter

    def use(self, prompter: PromptSegmenter | None) -> None:
        """Prompt with ``prompter`` from now on (None: the shipped model, loaded on next use)."""
        with self._load_lock:
            self._prompter = prompter

    def prompter(self) -> PromptSegmenter:
        """The prompt model, loading it on first use (seconds: call it off the GUI thread). CheckpointError
        when it cannot be loaded."""
        with self._load_lock:
            if self._prompter is None:
                self._prompter = PromptSegmenter.from_checkpoint(default_prompt_model())
            return self._prompter

    def ready(self, pixels: np.ndarray) -> bool:
        """Whether this frame's embedding is computed (a box on it is answered at once)."""
        prompter = self._prompter
        return prompter is not None and prompter.cached(pixels) is not None

    def show_frame(self, key: Any, pixels: np.ndarray) -> None:
        """A frame is shown: embed it next, dropping the requests of the frame shown before."""
        with self._cond:
            self._frame = (key, pixels)
            if self._box is not None and self._box[0] != key:
                self._box = None
            self._cond.notify()

    def ask(self, key: Any, pixels: np.ndarray, box: BoxXYXY) -> None:
        """Ask for the mask of what ``box`` holds on a frame; replaces a box not yet answered."""
        with self._cond:
            self._box = (key, pixels, box)
            self._cond.notify()

    def _has_work(self) -> bool:
        return self._frame is not None or self._box is not None

    def _take(self) -> tuple[tuple[Any, np.ndarray, BoxXYXY] | None, tuple[Any, np.ndarray] | None]:
        """(the box to answer, None) when one waits, else (None, the frame to embed)."""
        box, self._box = self._box, None
        frame = None
        if box is None:
            frame, self._frame = self._frame, None
        return box, frame

    def _serve(self, taken: tuple[tuple[Any, np.ndarray, BoxXYXY] | None, tuple[Any, np.ndarray] | None]) -> None:
        box, frame = taken
        if box is not None:
            self._answer(*box)
        else:
            self._embed(*frame)

    def _embed(self, key: Any, pixels: np.ndarray) -> None:
        try:
            self.prompter().embed(pixels)
        except Exception:  # noqa: BLE001 - said when a box is drawn on this frame (it tries again); no news before
            return
        self.embedded.emit(key)

    def _answer(self, key: Any, pixels: np.ndarray, box: BoxXYXY) -> None:
        try:
            prompter = self.prompter()
            was_ready = prompter.cached(pixels) is not None
            embedding = prompter.embed(pixels)
            if not was_ready:
                self.embedded.emit(key)
            mask = prompter.segment(embedding, box)
        except CheckpointError as exc:
            self.failed.emit(key, f"Box prompt: {exc}")
            return
        except Exception as exc:  # noqa: BLE001 - a bad box or model must not kill the worker
            self.failed.emit(key, f"Box prompt: {type(exc).__name__}: {exc}")
            return
        self.proposal.emit(key, box, mask)


# ----------------------------------------------------------------------------- cine propagation


@dataclass(frozen=True)
class PropagatedFrame:
    """Progress of a propagation: ``frame``'s label is ``mask``; ``done`` frames of at most ``total``."""

    frame: Frame
    mask: np.ndarray
    done: int
    total: int


def run_propagation(progress: Callable[[ProgressEvent | PropagatedFrame], None], should_stop: Callable[[], bool],
                    prompter: Callable[[], PromptSegmenter], source: Path, start_index: int,
                    start_mask: np.ndarray, margin: float = DEFAULT_MARGIN_PX) -> str:
    """Target of a ``ThreadJob``: carry ``start_mask`` (the label of frame ``start_index``) through the
    following frames of ``source`` with ``engine.inference.prompting.propagate``, reporting each frame as a
    :class:`PropagatedFrame`; returns how it ended, in words."""
    segmenter = prompter()
    total = max(count_frames(source) - start_index - 1, 0)
    pulled: list[Frame] = []  # propagate takes a frame, then yields its mask before taking the next

    def pixels():
        for frame in read_frames(source):
            if frame.index > start_index:
                pulled.append(frame)
                yield frame.pixels

    done = 0
    try:
        for mask in propagate(segmenter, pixels(), start_mask, margin=margin, should_stop=should_stop):
            done += 1
            progress(PropagatedFrame(pulled[-1], mask, done, total))
    except FrameReadError as exc:
        return f"Propagated to {done} frame(s); then {exc}"
    if should_stop():
        return f"Propagation stopped after {done} frame(s)"
    if pulled and len(pulled) > done:
        return f"Propagated to {done} frame(s); the mask vanished on frame {pulled[-1].index + 1}"
    return f"Propagated to {done} frame(s), to the end of the clip"

