"""One worker thread serving requests that the GUI thread queues: the loop, the lock and the stop that the
app's background workers share (``workers.InferenceWorker``, ``ThumbnailLoader``, ``DatasetLookup``,
``prompt_worker.PromptWorker``).

A subclass keeps its queue in its own fields, changes them only under ``self._cond`` (then calls
``self._cond.notify()``), and says three things: whether work waits (:meth:`_has_work`), what to take
from the queue while the lock is held (:meth:`_take`), and what to do with it after the lock is released
(:meth:`_serve`), so a new request can arrive (and replace a queued one) while one is served. Work that is
queued but due only later (:meth:`_due_in`) wakes the thread when its time comes."""
from __future__ import annotations

import threading
from typing import Any

from PySide6.QtCore import QObject, QThread


class RequestThread(QThread):
    """A QThread that waits for requests under ``_cond`` and serves them one at a time until :meth:`stop`."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._cond = threading.Condition()
        self._stopping = False  # read under _cond; a long _serve may check it to give up early

    def stop(self) -> None:
        """Stop after the request being served (if any) and wait for the thread to end."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self.wait()

    def run(self) -> None:
        while True:
            with self._cond:
                while not self._has_work() and not self._stopping:
                    self._cond.wait(self._due_in())
                if self._stopping:
                    return
                request = self._take()
            self._serve(request)

    def _has_work(self) -> bool:
        """Whether a request waits (called with ``_cond`` held)."""
        raise NotImplementedError

    def _due_in(self) -> float | None:
        """Seconds until queued work that waits for its time becomes due (called with ``_cond`` held);
        None: none waits for a time, so wait for a notify."""
        return None

    def _take(self) -> Any:
        """Take the next request off the queue (called with ``_cond`` held, only when :meth:`_has_work`)."""
        raise NotImplementedError

    def _serve(self, request: Any) -> None:
        """Do the work of one request (called without the lock)."""
        raise NotImplementedError


class LatestRequest(RequestThread):
    """A worker that serves only the newest request: :meth:`_ask` replaces one not yet started."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._wanted: Any = None

    def _ask(self, request: Any) -> None:
        with self._cond:
            self._wanted = request
            self._cond.notify()

    def _has_work(self) -> bool:
        return self._wanted is not None

    def _take(self) -> Any:
        wanted, self._wanted = self._wanted, None
        return wanted
