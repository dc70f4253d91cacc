"""Work off the GUI thread: inference on a QThread, batch segmentation on a QThread, fine-tuning in a
separate process. Each emits signals with its results; the GUI thread only assigns them."""
from __future__ import annotations

import multiprocessing
import os
import queue
import threading
import traceback
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from PySide6.QtCore import QObject, QThread, QTimer, Signal

from ..engine.batch import BatchOptions, segment_paths
from ..engine.checkpoint import CheckpointError
from ..engine.inference import Segmenter

POLL_MS = 100


def leave_a_core_for_the_gui() -> None:
    """Torch threads = cores - 1: on a small busy machine, two OpenMP threads fighting the GUI thread
    (and any other job) for two cores made one inference ~100x slower (935 ms against 9 ms)."""
    torch.set_num_threads(max(1, (os.cpu_count() or 1) - 1))


class InferenceWorker(QThread):
    """Runs the chosen models on submitted frames, newest request first; stale requests are dropped
    (stepping quickly through a cine loop only segments where the user stops)."""

    result = Signal(object, str, object, str)  # key, role, Segmentation, model name
    failed = Signal(object, str)  # key, message
    busy = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._cond = threading.Condition()
        self._request: tuple[Any, np.ndarray, tuple[str, ...]] | None = None
        self._models: dict[str, Path | None] = {}
        self._segmenters: dict[str, tuple[Path, Segmenter]] = {}
        self._stopping = False

    def set_models(self, models: dict[str, Path | None]) -> None:
        """Which checkpoint each role ("trfe", "unet") uses; loaded in the worker on next use."""
        with self._cond:
            self._models = dict(models)

    def submit(self, key: Any, pixels: np.ndarray, roles: tuple[str, ...] = ("trfe", "unet")) -> None:
        """Ask for ``roles``' predictions of a frame; replaces any request not yet started."""
        with self._cond:
            self._request = (key, pixels, roles)
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self.wait()

    def run(self) -> None:
        while True:
            with self._cond:
                while self._request is None and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                (key, pixels, roles), self._request = self._request, None
                models = dict(self._models)
            self.busy.emit(True)
            for role in roles:
                with self._cond:
                    if self._stopping or (self._request is not None and self._request[0] != key):
                        break  # a newer frame is waiting: it goes first
                self._segment(key, pixels, role, models.get(role))
            self.busy.emit(False)

    def _segment(self, key: Any, pixels: np.ndarray, role: str, path: Path | None) -> None:
        if path is None:
            return
        try:
            loaded = self._segmenters.get(role)
            if loaded is None or loaded[0] != path:
                loaded = self._segmenters[role] = (path, Segmenter.from_checkpoint(path))
            segmenter = loaded[1]
            self.result.emit(key, role, segmenter(pixels), segmenter.meta.name or path.stem)
        except CheckpointError as exc:
            self.failed.emit(key, str(exc))
        except Exception as exc:  # a model failing must not kill the worker
            self.failed.emit(key, f"{path.name}: {type(exc).__name__}: {exc}")


class BatchWorker(QThread):
    """``engine.batch.segment_paths`` on a thread: the same outputs as ``thyroid-studio segment``."""

    progress = Signal(int, int)  # frames done, total
    file_failed = Signal(str, str)  # path, message
    done = Signal(object)  # BatchReport
    failed = Signal(str)

    def __init__(self, paths: list[Path], out_dir: Path, model: Path, options: BatchOptions = BatchOptions(),
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.paths, self.out_dir, self.model, self.options = paths, out_dir, model, options
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    def run(self) -> None:
        try:
            segmenter = Segmenter.from_checkpoint(self.model)
            report = segment_paths(
                self.paths, self.out_dir, segmenter, self.options,
                progress=self.progress.emit, should_stop=self._cancel.is_set,
                on_failure=lambda path, message: self.file_failed.emit(str(path), message),
            )
            self.done.emit(report)
        except Exception as exc:  # shown to the user; the app goes on
            self.failed.emit(f"{type(exc).__name__}: {exc}")


def _process_main(target: Callable[..., Any], kwargs: dict[str, Any], events: Any, cancel: Any) -> None:
    """Child process: run ``target(progress=, should_stop=, **kwargs)`` and report through ``events``."""
    try:
        result = target(progress=lambda info: events.put(("progress", info)), should_stop=cancel.is_set, **kwargs)
        events.put(("done", result))
    except BaseException as exc:  # reported to the parent, which shows it
        events.put(("failed", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"))


class ProcessWorker(QObject):
    """A long job (fine-tuning) in a spawned process, so it shares neither the GIL nor torch threads with
    the GUI. ``target`` must be importable (a module-level function) and take ``progress`` and
    ``should_stop`` callbacks; a QTimer polls its events. ``cancel`` asks it to stop at the next check."""

    progress = Signal(object)  # whatever the target passes to progress()
    done = Signal(object)  # the target's return value
    failed = Signal(str)

    def __init__(self, target: Callable[..., Any], kwargs: dict[str, Any], parent: QObject | None = None) -> None:
        super().__init__(parent)
        context = multiprocessing.get_context("spawn")
        self._events = context.Queue()
        self._cancel = context.Event()
        self._process = context.Process(target=_process_main, args=(target, kwargs, self._events, self._cancel),
                                        daemon=True)
        self._timer = QTimer(self, interval=POLL_MS, timeout=self._poll)
        self._finished = False

    def start(self) -> None:
        self._process.start()
        self._timer.start()

    def cancel(self) -> None:
        self._cancel.set()

    def is_running(self) -> bool:
        return not self._finished

    def kill(self) -> None:
        """Stop at once (closing the app): the child is terminated, nothing more is reported."""
        self._timer.stop()
        self._finished = True
        if self._process.is_alive():
            self._process.terminate()
        self._process.join(timeout=5)

    def _poll(self) -> None:
        while not self._finished:
            try:
                kind, payload = self._events.get_nowait()
            except queue.Empty:
                break
            if kind == "progress":
                self.progress.emit(payload)
            else:
                self._finish()
                (self.done if kind == "done" else self.failed).emit(payload)
        if not self._finished and not self._process.is_alive() and self._events.empty():
            self._finish()
            self.failed.emit(f"the worker process ended unexpectedly (exit code {self._process.exitcode})")

    def _finish(self) -> None:
        self._finished = True
        self._timer.stop()
        self._process.join(timeout=1)


def run_finetune(progress: Callable[[dict], None], should_stop: Callable[[], bool], **config: Any) -> dict[str, Any]:
    """Target of the fine-tune process: ``engine.finetuning.finetune`` with ``FinetuneConfig(**config)``;
    returns a picklable summary (status, new checkpoint, before/after table)."""
    from ..engine.finetuning import FinetuneConfig, finetune

    leave_a_core_for_the_gui()
    result = finetune(FinetuneConfig(**config), progress=progress, should_stop=should_stop)
    return {"status": result.status, "checkpoint": result.checkpoint, "table": result.table, "seconds": result.seconds}
