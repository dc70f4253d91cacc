"""Ctrl-C as a request to stop: the first one lets the work stop at its next safe point, a second stops at once.

Commands whose work has safe points (between batches of frames, between dataset items, between
training steps) poll a :class:`StopRequest` instead of being torn by ``KeyboardInterrupt``, so an
interrupted run leaves whole files behind: the CSV of the frames done, a consistent dataset, no
half-written checkpoint. The handler is installed only while the work runs, in the main thread.

SIGTERM (``kill``, a job scheduler, a closing terminal session) stops as cleanly as the first Ctrl-C:
while a StopRequest is held it asks the work to stop at its safe point, and otherwise (``cli.main``
makes it so for the whole command) it is a KeyboardInterrupt, which removes temporary files on its
way out instead of leaving them where the process died.
"""
from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

from tqdm import tqdm

from . import print_error


class StopRequest:
    """``with StopRequest("segment") as stop: ... work(should_stop=stop)``; ``stop()`` is True after a Ctrl-C."""

    def __init__(self, command: str, safe_point: str) -> None:
        self.command, self.safe_point = command, safe_point
        self.requested = False
        self._previous = None

    def __call__(self) -> bool:
        return self.requested

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            self._previous = {number: signal.signal(number, self._on_signal)
                              for number in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc_info) -> None:
        if self._previous is not None:
            for number, handler in self._previous.items():
                signal.signal(number, handler)
            self._previous = None

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        why = "terminated (SIGTERM): " if signum == signal.SIGTERM else ""
        with tqdm.external_write_mode(file=sys.stderr):  # on a line of its own, not inside a progress bar
            print_error(self.command, f"{why}stopping after {self.safe_point} (Ctrl-C again to stop at once)")
