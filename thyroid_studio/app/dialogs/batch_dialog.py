"""Batch > Segment folder: progress of ``engine.inference.batch.segment_paths`` on a worker thread (count, rate,
time left), cancel, and the results handed back to be loaded into the frame list."""
from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QWidget

from ...engine.inference.batch import BatchOptions, BatchReport
from ...engine.progress import BatchProgress, ProgressEvent
from ..workers import ThreadJob, run_batch
from .job_dialog import JobDialog


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class BatchDialog(JobDialog):
    """Runs one batch when :meth:`start` is called; ``results_ready(csv_path)`` when it ends with outputs."""

    results_ready = Signal(object)  # Path of segmentation.csv

    def __init__(self, paths: list[Path], out_dir: Path, model: Path, options: BatchOptions = BatchOptions(overlay=True),
                 parent: QWidget | None = None) -> None:
        job = ThreadJob(run_batch, {"paths": paths, "out_dir": out_dir, "model": model, "options": options})
        super().__init__("Batch segmentation",
                         f"Segmenting {', '.join(p.name for p in paths)} with {model.stem}\ninto {out_dir}", job, parent)
        self.resize(520, 300)
        self.status.setText("Counting frames…")
        self._started = 0.0

    @property
    def report(self) -> BatchReport | None:
        return self.result

    def start(self) -> None:
        self._started = time.perf_counter()
        super().start()

    def on_progress(self, event: ProgressEvent) -> None:
        if not isinstance(event, BatchProgress):
            return
        elapsed = time.perf_counter() - self._started
        rate = event.done / elapsed if elapsed > 0 else 0.0
        left = (event.total - event.done) / rate if rate > 0 else 0.0
        self.bar.setRange(0, max(event.total, 1))
        self.bar.setValue(event.done)
        self.status.setText(f"{event.done} / {event.total} frames · {rate:.1f} frames/s · {_clock(left)} left")

    def on_done(self, report: BatchReport) -> None:
        verb = "Cancelled" if report.cancelled else "Done"
        failures = f", {len(report.failures)} files failed" if report.failures else ""
        self.status.setText(f"{verb}: {report.frames} frames from {report.files_done} of {report.files} files in "
                            f"{_clock(report.seconds)} ({report.frames_per_second:.1f} frames/s){failures}")
        csv_path = report.csv_path
        partial = csv_path.with_name(csv_path.name + ".partial") if csv_path is not None else None
        found = csv_path if csv_path is not None and csv_path.is_file() else partial
        if found is not None and found.is_file():
            self.results_ready.emit(found)
