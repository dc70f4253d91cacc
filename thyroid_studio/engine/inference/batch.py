"""Batch segmentation of files, folders, DICOM and video: the loop behind ``thyroid-studio segment``
and the GUI's Batch menu (which passes its own ``progress`` and ``should_stop``).

Frames stream through a three-stage pipeline so memory stays flat however many
there are: a reader thread decodes frames ahead (bounded queue), the caller's
thread runs the network ``batch_size`` frames at a time, and a writer thread
encodes masks and overlays. Every output is written atomically; the CSV summary
grows row by row in ``segmentation.csv.partial`` and is renamed at the end, so an
interrupted run never leaves a CSV that looks complete (and a CSV that cannot be
completed, e.g. on a full disk, is removed and reported).

Before anything is written, the output folder is checked and locked (not among the inputs,
not a file, writable, not held by another run: ``io.outputs``) and every output name is
planned from the inputs' headers (``io.outputs.OutputPlan``): an input whose mask or overlay
would land on an input, in a dataset, on a folder or device, or on another input's output is
refused with a message, so no output ever overwrites an input or another output. Every CSV
row goes through one writer (``io.tables.TableWriter``), so every column is neutralised
against spreadsheet formulas.
"""
from __future__ import annotations

import logging
import os
import queue
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2

from .. import geometry
from ..findings.fields import FIELDS
from ..findings.shape import shape_of
from ..findings.tirads import score
from ..io.dicom_seg import SUFFIX as SEG_SUFFIX
from ..io.dicom_seg import Algorithm, Segment, is_seg, seg_problem, write_seg
from ..io.files import TEXT_ERRORS, output_folder_problem, write_image_atomic, write_mask_png
from ..io.frames import Frame, FrameReadError, count_frames, find_inputs, frame_name, is_dicom, read_frames
from ..io.memory import PixelsInFlight, allocation_problem
from ..io.outputs import OutputError, OutputPlan, folder_lock
from ..io.tables import TableWriter
from ..io.ruler import calibrated
from .overlay import segmentation_overlay
from .segmenter import Segmentation, Segmenter, algorithm

log = logging.getLogger(__name__)

CSV_NAME = "segmentation.csv"


@dataclass(frozen=True)
class Run:
    """What every output of a run may need besides the frame and its result: the model, the options, and the
    SEG series of each DICOM input (one series per input and run; inputs without one get no SEG)."""

    model: Algorithm
    options: BatchOptions
    seg_series: dict[Path, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Output:
    """One file written per frame: its name from the frame's name, and how it is written (atomically; None:
    not written for this frame, e.g. no SEG of a PNG)."""

    pattern: str  # e.g. "{name}_overlay.png"
    write: Callable[[Path, Frame, Segmentation, Run], Path | None]

    def path(self, folder: Path, frame_name: str) -> Path:
        return folder / self.pattern.format(name=frame_name)


def _write_seg(path: Path, frame: Frame, result: Segmentation, run: Run) -> Path | None:
    """The frame's DICOM SEG: the model's nodule, and its gland when the gland is asked for too."""
    series = run.seg_series.get(frame.source)
    if series is None:
        return None
    segments = [Segment("nodule", result.nodule_mask, run.model)]
    if run.options.gland and result.gland_mask is not None:
        segments.append(Segment("gland", result.gland_mask, run.model))
    return write_seg(path, frame.source, frame.index, segments, series_uid=series, instance_number=frame.index + 1)


# Every per-frame output by kind. A new one (say a gland mask) is one entry here and a BatchOptions switch;
# the clash check covers every output a run writes.
OUTPUTS = {
    "mask": Output("{name}.png", lambda path, frame, result, run: write_mask_png(path, result.nodule_mask)),
    "overlay": Output("{name}_overlay.png", lambda path, frame, result, run: write_image_atomic(
        path, segmentation_overlay(frame.pixels, result), in_place=True)),
    "gland": Output("{name}_gland.png", lambda path, frame, result, run: write_mask_png(path, result.gland_mask)),
    "seg": Output("{name}" + SEG_SUFFIX, _write_seg),
}
CSV_COLUMNS = (
    "file", "frame", "nodule_area_px", "nodule_area_mm2", "x0", "y0", "x1", "y1",
    "longest_diameter_px", "longest_diameter_mm", "mean_confidence", "gland_share", "model", "ms", "mask",
    "mm_per_px_row", "mm_per_px_col", "scale_source",  # the frame's calibration and where it came from (empty: none)
    # the lobe holding the nodule (Segmentation.lobe): antero-posterior and horizontal extent; empty without an
    # informative gland, mm empty without a calibration that holds for the lobe
    "lobe_ap_px", "lobe_ap_mm", "lobe_width_px", "lobe_width_mm",
)
# The nodule's shape, and what a model with findings heads predicts: P(suspicious), each finding's most
# probable class and its probability, the ACR TI-RADS points and level (engine/findings/tirads.py).
FINDINGS_COLUMNS = (
    "suspicious_prob", *(f"{name}_{part}" for name in FIELDS for part in ("pred", "prob")),
    "taller_than_wide", "solidity", "acr_points", "acr_level",
)
CSV_COLUMNS += FINDINGS_COLUMNS


@dataclass(frozen=True)
class BatchOptions:
    overlay: bool = False  # also write <name>_overlay.png
    batch_size: int = 4  # frames per forward pass
    recursive: bool = True  # descend into sub-folders of folder inputs
    gland: bool = False  # also write <name>_gland.png, the predicted gland (models with a gland head)
    seg: bool = False  # also write <name>_seg.dcm, a DICOM SEG of each frame of a DICOM input
    scale: float | str | None = None  # frames without a calibration of their own: "auto" (the ruler), or mm per pixel

    @property
    def outputs(self) -> tuple[str, ...]:
        """The OUTPUTS written for each frame (the mask always; its path goes in the CSV)."""
        return ("mask",) + (("overlay",) if self.overlay else ()) + (("gland",) if self.gland else ()) + \
            (("seg",) if self.seg else ())


@dataclass(frozen=True)
class Job:
    """One input file and the folder its outputs go to (mirroring its place under a folder input)."""

    source: Path
    out_folder: Path


@dataclass
class BatchReport:
    """What a run did: counts, per-file failures (path, one-line message), the CSV written (None, with
    ``csv_problem`` saying why, when it could not be)."""

    files: int = 0
    frames: int = 0
    failures: list[tuple[Path, str]] = field(default_factory=list)
    segmented: set[Path] = field(default_factory=set)  # the files with a frame segmented so far
    csv_path: Path | None = None
    csv_problem: str | None = None
    seconds: float = 0.0
    cancelled: bool = False
    scales: dict[str, int] = field(default_factory=dict)  # frames by where their millimetres came from ("none": pixels)

    @property
    def ok(self) -> bool:
        return not self.failures and self.csv_problem is None

    @property
    def files_done(self) -> int:
        """Files whose frames were segmented without a failure (an interrupted run has not reached the others)."""
        return len(self.segmented - {path for path, _ in self.failures})

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def check_output_dir(paths: Iterable[str | os.PathLike], out_dir: str | os.PathLike) -> OutputPlan:
    """The run's output plan with ``paths`` as its inputs; OutputError (a ValueError), before anything is created,
    when ``out_dir`` is a file, lies under a file, cannot be written, is, lies inside or holds an input (links
    followed), or lies in a dataset: nothing is ever written among the inputs (mirrored sub-folders of an output
    folder that contains an input folder could land inside it)."""
    problem = output_folder_problem(out_dir)
    if problem:
        raise OutputError(f"--out {out_dir} {problem}")
    plan = OutputPlan(paths)
    plan.check_folder(out_dir, "--out")
    return plan


def make_output_dir(out_dir: str | os.PathLike) -> None:
    """Create ``out_dir`` and prove it writable (os.access cannot tell for root or ACLs); ValueError if not."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as exc:
        raise ValueError(f"--out {out_dir} cannot be written ({exc.strerror or exc})") from exc


def plan_jobs(paths: Iterable[str | os.PathLike], out_dir: str | os.PathLike, recursive: bool = True) -> list[Job]:
    """Expand inputs (frames.find_inputs) and give each file its output folder, mirroring sub-folders
    of a folder input so that equal names in different sub-folders do not clash. DICOM SEGs in a folder
    (a study pulled from a PACS holds them) are labels, not frames to segment, and are left out."""
    out_dir = Path(out_dir)
    jobs: dict[Path, Job] = {}
    for given in map(Path, paths):
        for source in find_inputs([given], recursive=recursive):
            if given.is_dir() and is_dicom(source) and is_seg(source):
                continue
            relative = source.parent.relative_to(given) if given.is_dir() else Path()
            jobs.setdefault(source, Job(source, out_dir / relative))
    return list(jobs.values())


def frame_counts(jobs: Sequence[Job]) -> dict[Path, int | None]:
    """Frames each input holds (headers and pixel-data extents, no decoding); None when it cannot be read
    (it fails later with its message)."""
    counts: dict[Path, int | None] = {}
    for job in jobs:
        try:
            counts[job.source] = count_frames(job.source)
        except FrameReadError:
            counts[job.source] = None
    return counts


def find_clashes(jobs: Sequence[Job], counts: dict[Path, int | None], options: BatchOptions,
                 plan: OutputPlan) -> dict[Path, str]:
    """The inputs whose outputs could not be written (in job order), each with its message: an output that would land
    on an input, in a dataset, on a folder, or on an earlier input's output (``plan.claim``).

    E.g. ``y/a_overlay.png`` and ``z/a.png --overlay`` both want ``a_overlay.png``: the first keeps it.
    """
    clashes: dict[Path, str] = {}
    for job in jobs:
        count = counts.get(job.source)
        if count is None:
            continue
        for index in range(count):
            problem = _claim_outputs(plan, job, frame_name(job.source, index, count), options)
            if problem is not None:
                clashes[job.source] = (f"{job.source.name}: {problem}; rename one of them or segment them into "
                                       "different --out folders")
                break
    return clashes


def _claim_outputs(plan: OutputPlan, job: Job, name: str, options: BatchOptions) -> str | None:
    """Claim every output of one frame; the first problem ("its mask a.png would overwrite ..."), or None."""
    for kind in options.outputs:
        path = OUTPUTS[kind].path(job.out_folder, name)
        if (problem := plan.claim(path, job.source, kind)) is not None:
            return f"its {kind} {path.name} {problem}"
    return None


# ------------------------------------------------------------------ pipeline stages

_END = object()


def _frames_of(jobs: Sequence[Job], in_flight: PixelsInFlight, stop: threading.Event,
               scale: float | str | None = None) -> Iterator[tuple[Job, Frame | FrameReadError]]:
    """Each job's frames in order, each read only when ``in_flight`` has room (and counted in it), calibrated as
    ``scale`` asks (``ruler.calibrated``) where they have no calibration of their own; a read failure is yielded in
    place (after any frames already read)."""
    for job in jobs:
        try:
            frames = read_frames(job.source)
            while True:
                in_flight.wait_for_room(stop)
                frame = next(frames, None)
                if frame is None:
                    break
                in_flight.add(frame.pixels.shape)
                yield job, calibrated(frame, scale)
        except FrameReadError as exc:
            yield job, exc
        except (MemoryError, cv2.error) as exc:  # a frame the caps allow, on a machine with less memory
            if (problem := allocation_problem(exc)) is None:
                raise
            yield job, FrameReadError(job.source, problem)


def prefetch(items: Iterable, depth: int, stop: threading.Event) -> Iterator:
    """Iterate ``items`` in a background thread, at most ``depth`` ahead; stops early when ``stop`` is set.

    An unexpected exception in the producer is re-raised in the consumer.
    """
    buffer: queue.Queue = queue.Queue(maxsize=max(1, depth))

    def put(item) -> bool:
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as exc:  # handed to the consumer
            put((_END, exc))
            return
        put((_END, None))

    threading.Thread(target=produce, name="frame-reader", daemon=True).start()
    while True:
        item = buffer.get()
        if isinstance(item, tuple) and item and item[0] is _END:
            if item[1] is not None:
                raise item[1]
            return
        yield item


def batches(items: Iterable, size: int, full: Callable[[], bool] = lambda: False) -> Iterator[list]:
    """Consecutive lists of ``size`` items (the last may be shorter; so is one ended early because ``full()``: the
    pixels in flight leave no room to read the rest of it)."""
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size or full():
            yield batch
            batch = []
    if batch:
        yield batch


def _fmt(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def csv_row(frame: Frame, result: Segmentation, model: str, ms: float, mask_path: str) -> dict[str, str]:
    """The summary row of one frame: size from geometry.measure (mm only for a mask inside the calibrated
    region), mean confidence inside the mask, the predicted gland's share of the ultrasound image (a gland
    over nearly all of it is no prior: ``Segmentation.informative_gland``)."""
    m = geometry.measure(result.nodule_mask, frame.spacing_for(result.nodule_mask))
    x0, y0, x1, y1 = m.bbox if m else ("",) * 4
    calibration = frame.calibration
    return {
        "file": str(frame.source), "frame": str(frame.index),
        "nodule_area_px": str(m.area_px if m else 0), "nodule_area_mm2": _fmt(m and m.area_mm2),
        "x0": str(x0), "y0": str(y0), "x1": str(x1), "y1": str(y1),
        "longest_diameter_px": _fmt(m and m.longest_px), "longest_diameter_mm": _fmt(m and m.longest_mm),
        "mean_confidence": _fmt(result.mean_confidence(), 4), "gland_share": _fmt(result.gland_share, 4), "model": model, "ms": f"{ms:.1f}", "mask": mask_path,
        "mm_per_px_row": _fmt(calibration and calibration.spacing_mm[0], 5),
        "mm_per_px_col": _fmt(calibration and calibration.spacing_mm[1], 5),
        "scale_source": calibration.source if calibration else "",
        **lobe_cells(frame, result),
        **findings_cells(frame, result),
    }


def lobe_cells(frame: Frame, result: Segmentation) -> dict[str, str]:
    """The lobe's extents: what a thyroid report states of the lobe (empty without an informative gland)."""
    lobe = result.lobe()
    size = geometry.measure(lobe, frame.spacing_for(lobe)) if lobe is not None else None
    if size is None:
        return dict.fromkeys(("lobe_ap_px", "lobe_ap_mm", "lobe_width_px", "lobe_width_mm"), "")
    return {"lobe_ap_px": str(size.height_px), "lobe_ap_mm": _fmt(size.height_mm),
            "lobe_width_px": str(size.width_px), "lobe_width_mm": _fmt(size.width_mm)}


def findings_cells(frame: Frame, result: Segmentation) -> dict[str, str]:
    """The ``FINDINGS_COLUMNS`` of one frame: the shape of its nodule mask (largest component), and, for a
    model with findings heads, the predictions and the ACR TI-RADS of the predicted findings with that
    shape. Empty cells where there is no nodule (shape, ACR) or no findings head (predictions, ACR)."""
    cells = dict.fromkeys(FINDINGS_COLUMNS, "")
    shape = shape_of(result.nodule_mask, frame.spacing_for(result.nodule_mask))
    if shape is not None:
        cells["taller_than_wide"] = str(shape.taller_than_wide).lower()
        cells["solidity"] = f"{shape.solidity:.4f}"
    predicted = result.findings
    if predicted is None:
        return cells
    cells["suspicious_prob"] = f"{predicted.suspicious:.4f}"
    for name, probs in predicted.probabilities.items():
        if name in FIELDS and probs:
            best = max(probs, key=probs.get)
            cells[f"{name}_pred"], cells[f"{name}_prob"] = best, f"{probs[best]:.4f}"
    if shape is not None:
        acr = score(predicted.most_likely(), shape)
        cells["acr_points"], cells["acr_level"] = str(acr.total), acr.level.name
    return cells


class _Writer:
    """Writes masks, overlays and CSV rows on a worker thread; rows reach the CSV in frame order.

    A CSV write that fails (a full disk) stops the CSV, not the masks: at the end the partial file is
    removed and the failure reported, since a summary missing rows would look complete.
    """

    def __init__(self, out_dir: Path, run: Run, fail: _Failures, in_flight: PixelsInFlight) -> None:
        self.out_dir, self.run, self.options, self.fail, self.in_flight = out_dir, run, run.options, fail, in_flight
        self.partial = out_dir / f"{CSV_NAME}.partial"
        self.csv_problem: str | None = None
        try:
            self.handle = open(self.partial, "w", newline="", encoding="utf-8", errors=TEXT_ERRORS)
            self.csv = TableWriter(self.handle, fieldnames=CSV_COLUMNS)  # every row of every column goes through it
            self.csv.writeheader()
        except OSError as exc:
            raise ValueError(f"--out {out_dir}: cannot write {self.partial.name} ({exc.strerror or exc})") from exc
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mask-writer")
        self.pending: deque[tuple[Job, tuple[int, ...], Future]] = deque()

    def submit(self, job: Job, frame: Frame, result: Segmentation, ms: float) -> None:
        self.pending.append((job, frame.pixels.shape, self.pool.submit(self._write, job, frame, result, ms)))
        while len(self.pending) > 2 * self.options.batch_size or (self.pending and self.pending[0][2].done()):
            self._collect()
        while self.pending and self.in_flight.pixels > self.in_flight.room:  # large frames: written before more read
            self._collect()

    def _write(self, job: Job, frame: Frame, result: Segmentation, ms: float) -> dict[str, str]:
        written = {kind: OUTPUTS[kind].write(OUTPUTS[kind].path(job.out_folder, frame.name), frame, result, self.run)
                   for kind in self.options.outputs}
        return csv_row(frame, result, self.run.model.name, ms, written["mask"].relative_to(self.out_dir).as_posix())

    def _collect(self) -> None:
        job, shape, future = self.pending.popleft()
        try:
            row = future.result()
        except Exception as exc:  # noqa: BLE001 - one frame's failure (I/O, encoding, measuring) must not end the batch
            detail = allocation_problem(exc) or (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            self.fail(job.source, f"{job.source.name}: could not write its outputs ({detail})")
            return
        finally:
            self.in_flight.done(shape)
        if self.csv_problem is None:
            try:
                self.csv.writerow(row)
                self.handle.flush()
            except OSError as exc:
                self.csv_problem = exc.strerror or str(exc)

    def finish(self, complete: bool) -> str | None:
        """Write what is pending; rename the CSV into place only when the run ended normally and every row
        reached the disk. A CSV that could not be written is removed; the message says why."""
        while self.pending:
            self._collect()
        self.pool.shutdown()
        try:
            self.handle.close()  # a full disk shows here, when the last buffered rows are written
        except OSError as exc:
            self.csv_problem = self.csv_problem or exc.strerror or str(exc)
        if self.csv_problem is not None:
            self.partial.unlink(missing_ok=True)
            return f"{CSV_NAME}: could not be written ({self.csv_problem}); the masks written are in place"
        if complete:
            os.replace(self.partial, self.out_dir / CSV_NAME)
        return None


# ------------------------------------------------------------------ the loop


class _Failures:
    """One failure per file, recorded in the report and announced through ``on_failure`` as it happens."""

    def __init__(self, report: BatchReport, on_failure: Callable[[Path, str], None] | None) -> None:
        self.report, self.on_failure, self.seen = report, on_failure, set()

    def __call__(self, path: Path, message: str) -> None:
        if path in self.seen:
            return
        self.seen.add(path)
        self.report.failures.append((path, message))
        if self.on_failure:
            self.on_failure(path, message)


def _good_frames(items: Iterable[tuple[Job, Frame | FrameReadError]], fail: _Failures, options: BatchOptions,
                 plan: OutputPlan, in_flight: PixelsInFlight) -> Iterator[tuple[Job, Frame]]:
    """Frames to segment; read errors go to ``fail``. Outputs were planned (find_clashes) from the headers; a frame
    whose name the plan did not foresee is claimed now, and fails if one of its outputs cannot be written."""
    for job, frame in items:
        if isinstance(frame, FrameReadError):
            fail(job.source, str(frame))
            continue
        problem = _claim_outputs(plan, job, frame.name, options)
        if problem is not None:
            in_flight.done(frame.pixels.shape)
            fail(job.source, f"{job.source.name}: the outputs of its frame {frame.index} cannot be written "
                 f"({problem}); rename it")
            continue
        yield job, frame


def _seg_series(jobs: Sequence[Job]) -> dict[Path, str]:
    """A new SEG series for each input a SEG can be made of; a warning line for each other input, once."""
    from pydicom.uid import generate_uid

    series = {}
    for job in jobs:
        problem = seg_problem(job.source)
        if problem is None:
            series[job.source] = generate_uid()
        else:
            log.warning("%s: no DICOM SEG for its frames: %s", job.source.name, problem)
    return series


def segment_paths(
    paths: Iterable[str | os.PathLike],
    out_dir: str | os.PathLike,
    segmenter: Segmenter,
    options: BatchOptions = BatchOptions(),
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_failure: Callable[[Path, str], None] | None = None,
) -> BatchReport:
    """Segment every frame of ``paths`` into ``out_dir``: one 0/255 mask PNG per frame (``Frame.name``),
    optional overlays, and ``segmentation.csv``.

    ``options.seg``: a DICOM SEG beside each mask of a DICOM input (one SEG series per input); other inputs get
    none, each said once as a logged warning.
    ``progress(done, total)`` in frames (a failed file counts one) after each batch; ``should_stop()`` is polled between
    batches (cancel: the frames done keep their outputs and CSV rows); ``on_failure(path, message)``
    once per file that could not be read or written, or whose outputs would overwrite another input's
    (the batch goes on), and once for the CSV if it cannot be written (``report.csv_problem`` says why).
    OutputError (a ValueError) before anything is written when ``out_dir`` is among the inputs, is a file, cannot be
    written or is held by another run, or when the summary CSV's name is taken by an input, a folder or a device.
    """
    paths = [Path(p) for p in paths]
    plan = check_output_dir(paths, out_dir)
    out_dir = Path(out_dir)
    make_output_dir(out_dir)
    with folder_lock(out_dir):
        return _segment(paths, out_dir, plan, segmenter, options, progress, should_stop, on_failure)


def _segment(paths: list[Path], out_dir: Path, plan: OutputPlan, segmenter: Segmenter, options: BatchOptions,
             progress: Callable[[int, int], None] | None, should_stop: Callable[[], bool] | None,
             on_failure: Callable[[Path, str], None] | None) -> BatchReport:
    """The run of :func:`segment_paths`, with the output folder checked and locked."""
    started = time.perf_counter()
    jobs = plan_jobs(paths, out_dir, options.recursive)
    plan.add_inputs(job.source for job in jobs)
    for name in (CSV_NAME, f"{CSV_NAME}.partial"):
        plan.check(out_dir / name, "the summary")
    report = BatchReport(files=len(jobs), csv_path=out_dir / CSV_NAME)
    fail = _Failures(report, on_failure)
    counts = frame_counts(jobs)
    clashes = find_clashes(jobs, counts, options, plan)
    for source, message in clashes.items():
        fail(source, message)
    jobs = [job for job in jobs if job.source not in clashes]
    total = sum(counts[job.source] or 1 for job in jobs) + len(clashes)  # a failed file counts one
    in_flight = PixelsInFlight()
    writer = _Writer(out_dir, Run(algorithm(segmenter.meta), options, _seg_series(jobs) if options.seg else {}), fail,
                     in_flight)
    stop = threading.Event()
    complete = False
    try:
        frames = _good_frames(prefetch(_frames_of(jobs, in_flight, stop, options.scale), 2 * options.batch_size, stop), fail, options,
                              plan, in_flight)
        for batch in batches(frames, options.batch_size, lambda: in_flight.pixels > in_flight.room):
            if should_stop and should_stop():
                report.cancelled = True
                break
            tic = time.perf_counter()
            try:
                results = segmenter.segment([frame.pixels for _, frame in batch])
            except (MemoryError, cv2.error) as exc:  # the rest of the batch goes on
                if (problem := allocation_problem(exc)) is None:
                    raise
                for job, frame in batch:
                    in_flight.done(frame.pixels.shape)
                    fail(job.source, f"{job.source.name}: its frame {frame.index} could not be segmented ({problem})")
                continue
            ms = (time.perf_counter() - tic) * 1000 / len(batch)
            for (job, frame), result in zip(batch, results):
                writer.submit(job, frame, result, ms)
                report.segmented.add(job.source)
                source = frame.calibration.source if frame.calibration else "none"
                report.scales[source] = report.scales.get(source, 0) + 1
            report.frames += len(batch)
            if progress:
                progress(report.frames + len(report.failures), total)
        if progress and not report.cancelled:
            progress(total, total)
        complete = True
    finally:
        stop.set()
        report.csv_problem = writer.finish(complete)
        if report.csv_problem is not None:
            report.csv_path = None
            if on_failure:
                on_failure(out_dir / CSV_NAME, report.csv_problem)
    report.seconds = time.perf_counter() - started
    return report
