"""Work off the GUI thread: inference (with read-ahead of the next frames, and background scoring for
"worst first"), thumbnails, the burnt-in ruler's scale and the look-up of opened frames in the dataset
(resume) on ``request_thread.RequestThread``s; long jobs (batch segmentation on a
thread, fine-tuning in a separate process) behind one :class:`Job` base that reports
``engine.progress`` events. Each emits signals with its results; the GUI thread only assigns them."""
from __future__ import annotations

import dataclasses
import multiprocessing
import queue
import threading
import traceback
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import cv2
import numpy as np
import torch
from PySide6.QtCore import QObject, QThread, QTimer, Signal
from PySide6.QtGui import QImage

# isort: split
import qimage2ndarray  # after PySide6: it picks the Qt binding already imported

from ..engine.datasets.index import DatasetIndex
from ..engine.datasets.layouts import DatasetError
from ..engine.inference.batch import BatchOptions, BatchReport, segment_paths
from ..engine.inference.segmenter import Segmentation, Segmenter, network_threads
from ..engine.inference.uncertainty import contour_uncertainty
from ..engine.io.frames import Frame, FrameReadError, read_frame, read_frames
from ..engine.io.ruler import propose_scale
from ..engine.models.checkpoint import CheckpointError
from ..engine.models.roles import MODEL_ROLES, PRIMARY_ROLE
from ..engine.progress import BatchProgress, Finished, Message, ProgressEvent
from .request_thread import LatestRequest, RequestThread

POLL_MS = 100
THUMB = 64  # pixels, the longer side
RECENT = 64  # (frame, model) results the inference worker remembers sending, so it does not read them ahead again


def leave_a_core_for_the_gui() -> None:
    """Torch threads = cores - 1 (``inference.network_threads``): on a small busy machine, two OpenMP threads
    fighting the GUI thread (and any other job) for two cores made one inference ~100x slower (935 ms against 9 ms)."""
    torch.set_num_threads(network_threads())


@dataclass
class _Taken:
    """What the inference worker took off its queues for one turn: one of a request, a frame to read ahead
    (with the read-ahead generation it was queued in) or a frame to score."""

    models: dict[str, Path | None]
    request: tuple[Any, np.ndarray, tuple[str, ...]] | None
    ahead: tuple[AheadFrame, int] | None
    score: tuple[Any, Path, int] | None
    left: int  # frames left to score


@dataclass(frozen=True)
class AheadFrame:
    """A frame to segment before it is shown (read-ahead): its key, where to read it (``pixels`` when the
    window has it decoded already) and the roles it still lacks."""

    key: Any
    source: Path
    index: int
    pixels: np.ndarray | None
    roles: tuple[str, ...]


class InferenceWorker(RequestThread):
    """Runs the chosen models on submitted frames, newest request first; stale requests are dropped
    (stepping quickly through a cine loop only segments where the user stops). Then, at a lower
    priority, the frames queued with :meth:`read_ahead` (the next ones in the reading direction, so
    their contours are ready when they are shown), then those queued with :meth:`score` (their
    primary model's uncertainty, for "worst first"). A frame it reads itself comes back by
    ``frame_read`` (the window keeps it, so showing it decodes nothing)."""

    result = Signal(object, str, object, str)  # key, role, Segmentation, model name
    scored = Signal(object, float)  # key, uncertainty of the primary model's prediction
    failed = Signal(object, str)  # key, message
    busy = Signal(str)  # what it is doing, "" when idle
    frame_read = Signal(object)  # a Frame read for the read-ahead
    ahead_done = Signal(object)  # key: every model asked for has segmented this frame read ahead

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._request: tuple[Any, np.ndarray, tuple[str, ...]] | None = None
        self._ahead: list[AheadFrame] = []
        self._ahead_generation = 0  # counts read_ahead calls: a frame read ahead for an older one stops early
        self._background: list[tuple[Any, Path, int]] = []
        self._models: dict[str, Path | None] = {}
        self._segmenters: dict[str, tuple[Path, Segmenter]] = {}
        self._emitted: OrderedDict[tuple[Any, str], Path] = OrderedDict()  # recent results: not read ahead again

    def set_models(self, models: dict[str, Path | None]) -> None:
        """Which checkpoint each role uses; loaded in the worker on next use. Drops queued scoring and read-ahead."""
        with self._cond:
            self._models = dict(models)
            self._background.clear()
            self._ahead.clear()
            self._emitted.clear()

    def submit(self, key: Any, pixels: np.ndarray, roles: tuple[str, ...] = MODEL_ROLES) -> None:
        """Ask for ``roles``' predictions of a frame; replaces any request not yet started."""
        with self._cond:
            self._request = (key, pixels, roles)
            self._cond.notify()

    def read_ahead(self, frames: list[AheadFrame]) -> None:
        """Segment these frames, in order, when no shown frame waits; replaces the read-ahead queue (a jump
        drops what was queued for the old place; a frame being segmented finishes its current model). A
        model's result sent in the last ``RECENT`` is not computed again for a frame queued here."""
        with self._cond:
            self._ahead = [frame for frame in frames if frame.roles]
            self._ahead_generation += 1
            self._cond.notify()

    def score(self, frames: list[tuple[Any, Path, int]]) -> None:
        """Queue (key, source, frame index) to be read and scored when nothing else waits; replaces the queue."""
        with self._cond:
            self._background = list(frames)
            self._cond.notify()

    def _has_work(self) -> bool:
        return self._request is not None or bool(self._ahead) or bool(self._background)

    def _take(self) -> _Taken:
        """The frame asked for, else the next frame to read ahead, else the next frame to score."""
        taken = _Taken(dict(self._models), self._request, None, None, len(self._background))
        self._request = None
        if taken.request is None and self._ahead:
            taken.ahead = (self._ahead.pop(0), self._ahead_generation)
        elif taken.request is None:
            taken.score = self._background.pop(0)
        return taken

    def _serve(self, taken: _Taken) -> None:
        if taken.request is not None:
            self._foreground(*taken.request, taken.models)
        elif taken.ahead is not None:
            self._read_ahead(*taken.ahead, taken.models)
        else:
            self.busy.emit(f"Scoring frames for worst first: {taken.left + 1} left")
            self._score(*taken.score, taken.models.get(PRIMARY_ROLE))
        with self._cond:
            idle = not self._has_work()
        if idle:
            self.busy.emit("")

    def _foreground(self, key: Any, pixels: np.ndarray, roles: tuple[str, ...], models: dict[str, Path | None]) -> None:
        self.busy.emit("Segmenting…")
        for role in roles:
            with self._cond:
                if self._stopping or (self._request is not None and self._request[0] != key):
                    return  # a newer frame is waiting: it goes first
            self._segment_and_send(key, pixels, role, models.get(role))

    def _read_ahead(self, ahead: AheadFrame, generation: int, models: dict[str, Path | None]) -> None:
        """Segment a frame not shown yet. Between models it stops if the queue was replaced since (a jump, or
        the next step: a frame still wanted is queued again), and yields to a request for a shown frame (what
        is left goes back to the front of the queue, unless the request is for this very frame: it asks for
        what is left). A result that a waiting request asks for is struck off it, so it is not computed twice."""
        with self._cond:
            roles = [role for role in ahead.roles if self._emitted.get((ahead.key, role)) != models.get(role)]
        pixels = ahead.pixels
        if pixels is None and roles:
            try:
                frame = read_frame(ahead.source, ahead.index)
            except FrameReadError:
                return  # the frame list says why when the frame is shown
            self.frame_read.emit(frame)
            pixels = frame.pixels
        for done, role in enumerate(roles):
            with self._cond:
                if self._stopping or generation != self._ahead_generation:
                    return
                if self._request is not None:
                    if self._request[0] != ahead.key:
                        self._ahead.insert(0, dataclasses.replace(ahead, pixels=pixels, roles=tuple(roles[done:])))
                    return
            self._segment_and_send(ahead.key, pixels, role, models.get(role))
        self.ahead_done.emit(ahead.key)

    def _segment_and_send(self, key: Any, pixels: np.ndarray, role: str, path: Path | None) -> None:
        """Segment, strike the result off a waiting request for the same frame, remember it, send it."""
        result = self._segment(key, pixels, role, path)
        if result is None:
            return
        with self._cond:
            waiting = self._request
            if waiting is not None and waiting[0] == key and role in waiting[2]:
                roles = tuple(r for r in waiting[2] if r != role)
                self._request = (key, waiting[1], roles) if roles else None
            self._emitted[key, role] = path
            self._emitted.move_to_end((key, role))
            while len(self._emitted) > RECENT:
                self._emitted.popitem(last=False)
        self.result.emit(key, role, result[0], result[1])
        if role == PRIMARY_ROLE:
            self.scored.emit(key, contour_uncertainty(result[0].nodule_prob, result[0].nodule_mask))

    def _score(self, key: Any, source: Path, index: int, path: Path | None) -> None:
        try:
            pixels = read_frame(source, index).pixels
        except FrameReadError as exc:
            self.failed.emit(key, str(exc))
            return
        result = self._segment(key, pixels, PRIMARY_ROLE, path)
        if result is not None:
            self.scored.emit(key, contour_uncertainty(result[0].nodule_prob, result[0].nodule_mask))

    def _segment(self, key: Any, pixels: np.ndarray, role: str, path: Path | None) -> tuple[Segmentation, str] | None:
        """(segmentation, model name), or None with the failure reported."""
        if path is None:
            return None
        try:
            loaded = self._segmenters.get(role)
            if loaded is None or loaded[0] != path:
                loaded = self._segmenters[role] = (path, Segmenter.from_checkpoint(path))
            segmenter = loaded[1]
            return segmenter(pixels), segmenter.meta.name or path.stem
        except CheckpointError as exc:
            self.failed.emit(key, str(exc))
        except Exception as exc:  # a model failing must not kill the worker
            self.failed.emit(key, f"{path.name}: {type(exc).__name__}: {exc}")
        return None


class ThumbnailLoader(RequestThread):
    """Reads and shrinks frames for the frame list, the latest request first (the rows on screen now)."""

    loaded = Signal(object, object)  # key, QImage (None when the frame cannot be read)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._wanted: dict[Any, tuple[Path, int]] = {}

    def request(self, key: Any, source: Path, index: int) -> None:
        with self._cond:
            self._wanted.pop(key, None)
            self._wanted[key] = (source, index)  # to the end: served first
            self._cond.notify()

    def _has_work(self) -> bool:
        return bool(self._wanted)

    def _take(self) -> tuple[Any, tuple[Path, int]]:
        return self._wanted.popitem()

    def _serve(self, wanted: tuple[Any, tuple[Path, int]]) -> None:
        key, (source, index) = wanted
        try:
            image = thumbnail(read_frame(source, index).gray())
        except FrameReadError:
            image = None
        self.loaded.emit(key, image)


class RulerWorker(LatestRequest):
    """Reads the scale off the shown frame's burnt-in ruler (``engine.io.ruler.propose_scale``, milliseconds
    to a few tenths of a second on large frames), the newest request first; the answer is a proposal for
    the user to confirm, never applied."""

    proposed = Signal(object, object)  # key, RulerProposal or None (no ruler found)

    def propose(self, key: Any, pixels: np.ndarray) -> None:
        """Look for the ruler of this frame next; replaces a request not yet started."""
        self._ask((key, pixels))

    def _serve(self, wanted: tuple[Any, np.ndarray]) -> None:
        key, pixels = wanted
        try:
            proposal = propose_scale(pixels)
        except Exception:  # noqa: BLE001 - an odd frame gets no proposal; the worker lives on
            proposal = None
        self.proposed.emit(key, proposal)


class DatasetLookup(RequestThread):
    """Finds which opened frames a dataset already holds (resume): each frame is read and hashed once
    (``content_hash``) and looked up (``DatasetIndex.find``: the item saved from its file and frame, else, for a
    file renamed or moved since, the item with its pixels), and its saved mask read. Nothing is read while the
    dataset holds no item. Requests queue up; a request for another dataset folder replaces what is queued."""

    found = Signal(object, object, object)  # frame key, engine.datasets.index.Match, saved mask (bool array)
    failed = Signal(str)  # the dataset cannot be read, or a saved mask cannot
    busy = Signal(str)  # what it is doing, "" when done

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._folder: Path | None = None
        self._queue: dict[Any, tuple[Path, int]] = {}  # key -> (source, frame index), in request order

    def look_up(self, folder: Path, frames: list[tuple[Any, Path, int]]) -> None:
        """Queue (key, source, frame index) to be looked up in the dataset at ``folder``."""
        with self._cond:
            if folder != self._folder:
                self._folder, self._queue = folder, {}
            self._queue.update((key, (source, index)) for key, source, index in frames)
            self._cond.notify()

    def _has_work(self) -> bool:
        return bool(self._queue)

    def _take(self) -> Path:
        return self._folder  # the frames themselves are taken a source at a time (_work)

    def _serve(self, folder: Path) -> None:
        index = DatasetIndex(folder)
        try:
            empty = not index.exists or not index.items
        except DatasetError as exc:
            self.failed.emit(f"Cannot look the opened frames up in the dataset: {exc}")
            empty = True
        self._work(folder, index, empty)
        self.busy.emit("")

    def _work(self, folder: Path, index: DatasetIndex, empty: bool) -> None:
        """Take the queued frames a source at a time (a video is decoded once) until none are left for ``folder``."""
        while True:
            with self._cond:
                if self._stopping or self._folder != folder or not self._queue:
                    return
                source = next(iter(self._queue.values()))[0]
                wanted = {i: key for key, (s, i) in self._queue.items() if s == source}
                for key in wanted.values():
                    del self._queue[key]
                left = len(self._queue)
            if empty:
                continue
            self.busy.emit(f"Looking up opened frames in the dataset: {left + len(wanted)} left")
            for frame in _frames(source, wanted):
                self._look_up_frame(wanted[frame.index], frame, index)

    def _look_up_frame(self, key: Any, frame: Frame, index: DatasetIndex) -> None:
        try:
            match = index.find(frame.pixels, source=frame.source, frame_index=frame.index)
            if match is None:
                return
            mask = match.item.read_mask()
        except DatasetError as exc:
            self.failed.emit(f"{frame.name}: saved in the dataset, but {exc}")
            return
        if mask.shape != frame.pixels.shape[:2]:
            self.failed.emit(f"{frame.name}: its saved mask ({match.item.key}) is {mask.shape[1]}x{mask.shape[0]}, "
                             f"the frame {frame.pixels.shape[1]}x{frame.pixels.shape[0]}; not opened")
            return
        self.found.emit(key, match, mask)


def _frames(source: Path, indexes: dict[int, Any]) -> Iterator[Frame]:
    """The frames of ``source`` at ``indexes`` (unreadable ones skipped: the frame list names them when shown)."""
    try:
        if set(indexes) == {0}:
            yield read_frame(source)
            return
        last = max(indexes)
        for frame in read_frames(source):
            if frame.index in indexes:
                yield frame
            if frame.index >= last:
                return
    except FrameReadError:
        return


def thumbnail(gray: np.ndarray) -> QImage:
    """A gray frame shrunk to THUMB pixels on its longer side (a QImage: safe to make off the GUI thread)."""
    scale = THUMB / max(gray.shape)
    small = cv2.resize(gray, (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale))),
                       interpolation=cv2.INTER_AREA)
    return qimage2ndarray.gray2qimage(np.ascontiguousarray(small))


# ----------------------------------------------------------------------------- long jobs

Target = Callable[..., Any]  # target(progress=, should_stop=, **kwargs) -> result


def _run_target(target: Target, kwargs: dict[str, Any], report: Callable[[str, Any], None],
                should_stop: Callable[[], bool]) -> None:
    """Run a job's target, reporting ("progress", event), then ("done", result) or ("failed", message)."""
    try:
        result = target(progress=lambda event: report("progress", event), should_stop=should_stop, **kwargs)
        report("done", result)
    except BaseException as exc:  # reported to the GUI, which shows it
        report("failed", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}")


class Job(QObject):
    """A long job: ``progress`` events (``engine.progress``), :meth:`cancel` (stop at the next check),
    and exactly one end, ``done(result)`` or ``failed(message)``. Subclasses say where it runs."""

    progress = Signal(object)  # an engine.progress event
    done = Signal(object)  # the target's return value
    failed = Signal(str)

    def __init__(self, target: Target, kwargs: dict[str, Any], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.target, self.kwargs = target, kwargs
        self._running = False

    def start(self) -> None:
        self._running = True

    def is_running(self) -> bool:
        return self._running

    def cancel(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        """End now (the app closes): nothing more is reported."""
        self._running = False

    def _ended(self) -> None:
        """The target returned or raised: release what ran it."""

    def _deliver(self, kind: str, payload: Any) -> None:
        if not self._running:
            return
        if kind == "progress":
            self.progress.emit(payload)
            return
        self._running = False
        self._ended()
        (self.done if kind == "done" else self.failed).emit(payload)


class _JobThread(QThread):
    event = Signal(str, object)

    def __init__(self, job: "ThreadJob") -> None:
        super().__init__(job)
        self.job = job

    def run(self) -> None:
        _run_target(self.job.target, self.job.kwargs, self.event.emit, self.job.cancelled.is_set)


class ThreadJob(Job):
    """A job on a QThread of this process (batch segmentation: torch releases the GIL)."""

    def __init__(self, target: Target, kwargs: dict[str, Any], parent: QObject | None = None) -> None:
        super().__init__(target, kwargs, parent)
        self.cancelled = threading.Event()
        self._thread = _JobThread(self)
        self._thread.event.connect(self._deliver)

    def start(self) -> None:
        super().start()
        self._thread.start()

    def cancel(self) -> None:
        self.cancelled.set()

    def stop(self) -> None:
        super().stop()
        self.cancelled.set()
        self._thread.wait()

    def _ended(self) -> None:
        self._thread.wait()


def _process_main(target: Target, kwargs: dict[str, Any], events: Any, cancel: Any) -> None:
    _run_target(target, kwargs, lambda kind, payload: events.put((kind, payload)), cancel.is_set)


class ProcessJob(Job):
    """A job in a spawned process (fine-tuning), so it shares neither the GIL nor torch threads with the
    GUI. ``target`` must be importable (a module-level function); a QTimer polls its events."""

    def __init__(self, target: Target, kwargs: dict[str, Any], parent: QObject | None = None) -> None:
        super().__init__(target, kwargs, parent)
        context = multiprocessing.get_context("spawn")
        self._events = context.Queue()
        self._cancel = context.Event()
        self._process = context.Process(target=_process_main, args=(target, kwargs, self._events, self._cancel),
                                        daemon=True)
        self._timer = QTimer(self, interval=POLL_MS, timeout=self._poll)

    def start(self) -> None:
        super().start()
        self._process.start()
        self._timer.start()

    def cancel(self) -> None:
        self._cancel.set()

    def stop(self) -> None:
        super().stop()
        self._timer.stop()
        if self._process.is_alive():
            self._process.terminate()
        self._process.join(timeout=5)

    def _ended(self) -> None:
        self._timer.stop()
        self._process.join(timeout=1)

    def _poll(self) -> None:
        while self.is_running():
            try:
                kind, payload = self._events.get_nowait()
            except queue.Empty:
                break
            self._deliver(kind, payload)
        if self.is_running() and not self._process.is_alive() and self._events.empty():
            self._deliver("failed", f"the worker process ended unexpectedly (exit code {self._process.exitcode})")


# ----------------------------------------------------------------------------- job targets

def run_batch(progress: Callable[[ProgressEvent], None], should_stop: Callable[[], bool], paths: list[Path],
              out_dir: Path, model: Path, options: BatchOptions) -> BatchReport:
    """``engine.inference.batch.segment_paths``: the same outputs as ``thyroid-studio segment``."""
    segmenter = Segmenter.from_checkpoint(model)
    return segment_paths(paths, out_dir, segmenter, options,
                         progress=lambda done, total: progress(BatchProgress(done, total)), should_stop=should_stop,
                         on_failure=lambda path, message: progress(Message(message)))


def run_finetune(progress: Callable[[ProgressEvent], None], should_stop: Callable[[], bool], **config: Any) -> Finished:
    """Target of the fine-tune process: ``engine.training.finetuning.finetune`` with ``FinetuneConfig(**config)``."""
    from ..engine.training.finetuning import FinetuneConfig, finetune

    leave_a_core_for_the_gui()
    result = finetune(FinetuneConfig(**config), progress=progress, should_stop=should_stop)
    checkpoint = str(result.checkpoint) if result.checkpoint is not None else None
    return Finished(result.status, result.seconds, checkpoint, result.table)
