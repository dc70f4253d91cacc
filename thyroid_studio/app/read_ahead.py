"""Contours ready when the frame appears: while the user looks at a frame, the next frames in the reading
direction (the direction of the last step, in the list's order and filter) are segmented in the
background (``workers.InferenceWorker.read_ahead``, below any request for the shown frame), and the next
frame's LiteMedSAM embedding is computed once its contours are (so the two models ahead do not share the
CPU with it) and the shown frame's embedding is done (``PromptWorker.embed_ahead``).

While the user steps through a clip (a step less than ``READING_PACE_S`` after the one before), a shown
frame's embedding waits ``STEPPING_SETTLE_S`` before it starts: at reading speed a 1-2 s embedding would
never be ready before the next step, and its CPU would slow every frame's contours appearing (median
key -> contours 74-117 ms when it started 0.3 s after each frame, 45-56 ms when it waited 1.2 s, on the
shared 2-core machine; bench/README.md). Once the user stops, it starts, and a box drawn before then asks
for it at once.

Each shown frame replaces what was queued, so a jump cancels the read-ahead of the old place. Frames the
inference worker reads for it come back here and are kept by the worklist: showing them then decodes
nothing on the GUI thread, and the embedding made ahead is keyed by the very array that will be shown.
"""
from __future__ import annotations

import math
import time

import numpy as np
from PySide6.QtCore import QObject

from ..engine.io.frames import Frame
from ..engine.labels.worklist import Worklist
from ..engine.models.roles import MODEL_ROLES
from .frame_list import FrameOrder
from .prompt_worker import PromptWorker
from .workers import AheadFrame, InferenceWorker

AHEAD = 3  # frames segmented ahead of the shown one (two models take ~0.1-0.3 s a frame on a 2-core CPU)
READING_PACE_S = 2.0  # steps closer together than this are reading through a clip
STEPPING_SETTLE_S = 1.2  # while reading: seconds a frame is shown before its embedding starts


class ReadAhead(QObject):
    """Queues the frames after the shown one for segmentation and the next one for its embedding."""

    def __init__(self, worklist: Worklist, order: FrameOrder, inference: InferenceWorker, prompts: PromptWorker,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.worklist, self.order, self.inference, self.prompts = worklist, order, inference, prompts
        self.direction = 1  # +1: down the list, -1: up it
        self._next: int | None = None  # the row expected next, whose embedding is wanted
        self._last_step = -math.inf  # time.monotonic() of the last step
        self._reading = False  # the frame about to be shown was reached by a step soon after the one before
        inference.frame_read.connect(self._frame_read)
        inference.ahead_done.connect(self._segmented)

    def stepped(self, delta: int) -> None:
        """The user stepped ``delta`` rows: reading goes on that way."""
        if delta:
            self.direction = 1 if delta > 0 else -1
        now = time.monotonic()
        self._reading, self._last_step = now - self._last_step < READING_PACE_S, now

    def frame_shown(self, row: int, pixels: np.ndarray) -> None:
        """A frame is shown (``pixels``: the very array on screen): its embedding, then the frames after it."""
        reading, self._reading = self._reading, False
        self.prompts.show_frame(self.worklist[row].key, pixels, STEPPING_SETTLE_S if reading else None)
        rows = self.rows_after(row)
        frames = []
        for ahead in rows:
            entry, cached = self.worklist[ahead], self.worklist.cached_frame(ahead)
            missing = tuple(role for role in MODEL_ROLES if role not in entry.predictions)
            frames.append(AheadFrame(entry.key, entry.source, entry.index, cached.pixels if cached else None, missing))
        self.inference.read_ahead(frames)
        self._next = rows[0] if rows else None
        if frames and not frames[0].roles:  # its contours are there already
            self._embed_next()

    def rows_after(self, row: int) -> list[int]:
        """Up to ``AHEAD`` worklist rows after ``row`` in the reading direction, as the list orders and filters them."""
        rows = []
        for step in range(1, AHEAD + 1):
            view_row = self.order.stepped(row, step * self.direction)
            if not 0 <= view_row < self.order.rowCount():
                break
            rows.append(self.order.mapToSource(self.order.index(view_row, 0)).row())
        return rows

    def _frame_read(self, frame: Frame) -> None:
        self.worklist.keep_frame(frame)

    def _segmented(self, key: tuple[str, int]) -> None:
        if self._next is not None and self.worklist.row_of(*key) == self._next:
            self._embed_next()

    def _embed_next(self) -> None:
        cached = self.worklist.cached_frame(self._next) if self._next is not None else None
        if cached is not None:
            self.prompts.embed_ahead(self.worklist[self._next].key, cached.pixels)
