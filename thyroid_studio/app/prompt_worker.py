"""Box prompts off the GUI thread: the shown frame's LiteMedSAM embedding computed in the background
as soon as the frame opens (and the next frame's, so stepping on finds it ready), boxes answered with
proposed masks, and cine propagation as a job target.

One :class:`PromptWorker` thread (a ``request_thread.RequestThread``) holds the prompt model
(``engine.inference.prompting.PromptSegmenter``, loaded on first use from ``models/litemedsam.pt`` unless one is
given) and serves the newest request: a box on the shown frame first, else the shown frame's embedding, begun
once the frame has been shown for a moment (``SETTLE_S``, or longer while the user steps through a clip:
``read_ahead.STEPPING_SETTLE_S``), so the embedding's CPU does not slow the frame's contours appearing; a box
drawn before then asks at once. A frame left before its embedding started is never embedded; one being
embedded finishes (a forward pass cannot be interrupted) and stays in the segmenter's cache for a step back.
The embedding of the frame expected next (:meth:`PromptWorker.embed_ahead`) runs on a second thread of its
own (:class:`_AheadEmbedder`) once the shown frame's is done, so a box on the shown frame never waits behind
it; a frame embedded on one thread while the other needs it is waited for, not embedded twice.
:func:`run_propagation` is the target of a ``workers.ThreadJob``: it reads the clip on its own thread and
reports each frame's mask as a :class:`PropagatedFrame` progress event.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from ..engine.inference.prompting import DEFAULT_MARGIN_PX, BoxXYXY, Embedding, PromptSegmenter, propagate
from ..engine.io.frames import Frame, FrameReadError, count_frames, read_frames
from ..engine.models.checkpoint import CheckpointError
from ..engine.models.library import default_prompt_model
from ..engine.progress import ProgressEvent
from .request_thread import LatestRequest, RequestThread

SETTLE_S = 0.3  # seconds a shown frame waits before its embedding starts, by default


class PromptWorker(RequestThread):
    """Embeds the shown frame (:meth:`show_frame`) and answers boxes on it (:meth:`ask`), newest first; the
    frame expected next is embedded after the shown one, on another thread (:meth:`embed_ahead`)."""

    embedded = Signal(object)  # key: the frame's embedding is ready, boxes on it are answered at once
    proposal = Signal(object, object, object)  # key, box, (H, W) bool mask
    failed = Signal(object, str)  # key, why a box got no answer (no prompt model, a box outside the frame)

    def __init__(self, parent: QObject | None = None, prompter: PromptSegmenter | None = None) -> None:
        super().__init__(parent)
        self._frame: tuple[Any, np.ndarray] | None = None  # to embed
        self._frame_due = 0.0  # time.monotonic() when the shown frame's embedding may start
        self._box: tuple[Any, np.ndarray, BoxXYXY] | None = None  # to answer
        self._ahead: tuple[Any, np.ndarray] | None = None  # to embed once the shown frame's embedding is done
        self._embedding_shown = False  # the shown frame's embedding is being computed (under _cond)
        self._load_lock = threading.Lock()
        self._prompter = prompter
        self._in_flight: dict[int, threading.Event] = {}  # id(pixels) -> set when its embedding is done
        self._in_flight_lock = threading.Lock()
        self._embedder = _AheadEmbedder(self)

    def start(self, *args) -> None:
        super().start(*args)
        self._embedder.start()

    def stop(self) -> None:
        self._embedder.stop()
        super().stop()

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

    def show_frame(self, key: Any, pixels: np.ndarray, settle: float | None = None) -> None:
        """A frame is shown: embed it once it has been shown for ``settle`` seconds (None: ``SETTLE_S``),
        dropping the requests of the frame shown before."""
        with self._cond:
            self._frame, self._ahead = (key, pixels), None
            self._frame_due = time.monotonic() + (SETTLE_S if settle is None else settle)
            if self._box is not None and self._box[0] != key:
                self._box = None
            self._cond.notify()

    def ask(self, key: Any, pixels: np.ndarray, box: BoxXYXY) -> None:
        """Ask for the mask of what ``box`` holds on a frame; replaces a box not yet answered."""
        with self._cond:
            self._box = (key, pixels, box)
            self._cond.notify()

    def embed_ahead(self, key: Any, pixels: np.ndarray) -> None:
        """Embed this frame (the next one in the reading direction) once the shown frame's embedding is done,
        so a box on it is answered at once when it is shown; replaces the frame queued before. Pass the very
        array that will be shown (the cache is keyed by it)."""
        with self._cond:
            self._ahead = (key, pixels)
            if self._frame is None and not self._embedding_shown:
                self._hand_ahead_over()

    def _hand_ahead_over(self) -> None:
        """The shown frame is embedded (``_cond`` held): the frame expected next goes to the other thread."""
        if self._ahead is not None:
            self._embedder.embed(*self._ahead)
            self._ahead = None

    def _has_work(self) -> bool:
        return self._box is not None or (self._frame is not None and time.monotonic() >= self._frame_due)

    def _due_in(self) -> float | None:
        return max(self._frame_due - time.monotonic(), 0.0) if self._frame is not None else None

    def _take(self) -> tuple[tuple[Any, np.ndarray, BoxXYXY] | None, tuple[Any, np.ndarray] | None]:
        """(the box to answer, None) when one waits, else (None, the frame to embed)."""
        box, self._box = self._box, None
        frame = None
        if box is None:
            frame, self._frame = self._frame, None
            self._embedding_shown = True
        return box, frame

    def _serve(self, taken: tuple[tuple[Any, np.ndarray, BoxXYXY] | None, tuple[Any, np.ndarray] | None]) -> None:
        box, frame = taken
        if box is not None:
            self._answer(*box)
            return
        try:
            self._embed(*frame)
        finally:
            with self._cond:
                self._embedding_shown = False
                if self._frame is None:
                    self._hand_ahead_over()

    def embed_once(self, pixels: np.ndarray) -> Embedding:
        """The frame's embedding, computed once whichever thread asks first: a second asker waits for it."""
        with self._in_flight_lock:
            running = self._in_flight.get(id(pixels))
            if running is None:
                self._in_flight[id(pixels)] = threading.Event()
        if running is not None:
            running.wait()
            return self.prompter().embed(pixels)  # from the cache (computed again only if the other failed)
        try:
            return self.prompter().embed(pixels)
        finally:
            with self._in_flight_lock:
                self._in_flight.pop(id(pixels)).set()

    def _embed(self, key: Any, pixels: np.ndarray) -> None:
        try:
            self.embed_once(pixels)
        except Exception:  # noqa: BLE001 - said when a box is drawn on this frame (it tries again); no news before
            return
        self.embedded.emit(key)

    def _answer(self, key: Any, pixels: np.ndarray, box: BoxXYXY) -> None:
        try:
            prompter = self.prompter()
            was_ready = prompter.cached(pixels) is not None
            embedding = self.embed_once(pixels)
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


class _AheadEmbedder(LatestRequest):
    """The prompt worker's second thread: embeds the frame expected next (the newest asked for)."""

    def __init__(self, worker: PromptWorker) -> None:
        super().__init__(worker)
        self.worker = worker

    def embed(self, key: Any, pixels: np.ndarray) -> None:
        self._ask((key, pixels))

    def _serve(self, wanted: tuple[Any, np.ndarray]) -> None:
        self.worker._embed(*wanted)


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

