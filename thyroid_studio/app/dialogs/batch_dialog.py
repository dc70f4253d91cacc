"""Batch > Segment folder: progress of ``engine.batch.segment_paths`` on a worker thread (count, rate,
time left), cancel, and the results handed back to be loaded into the frame list."""
from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QLabel, QPlainTextEdit, QProgressBar, QPushButton,
                               QVBoxLayout, QWidget)

from ...engine.batch import BatchOptions, BatchReport
from ..workers import BatchWorker


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class BatchDialog(QDialog):
    """Runs one batch when :meth:`start` is called; ``results_ready(csv_path)`` when it ends with outputs."""

    results_ready = Signal(object)  # Path of segmentation.csv

    def __init__(self, paths: list[Path], out_dir: Path, model: Path, options: BatchOptions = BatchOptions(overlay=True),
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Batch segmentation")
        self.resize(520, 300)
        self.report: BatchReport | None = None
        self.worker = BatchWorker(paths, out_dir, model, options, self)
        self.worker.progress.connect(self._progress)
        self.worker.file_failed.connect(lambda path, message: self.log.appendPlainText(message))
        self.worker.done.connect(self._done)
        self.worker.failed.connect(self._failed)
        self.heading = QLabel(f"Segmenting {', '.join(p.name for p in paths)} with {model.stem}\ninto {out_dir}", self)
        self.bar = QProgressBar(self)
        self.status = QLabel("Counting frames…", self)
        self.log = QPlainTextEdit(self, readOnly=True)
        self.buttons = QDialogButtonBox(self)
        self.cancel_button = QPushButton("Cancel", self)
        self.buttons.addButton(self.cancel_button, QDialogButtonBox.ButtonRole.RejectRole)
        self.cancel_button.clicked.connect(self.cancel)
        layout = QVBoxLayout(self)
        for widget in (self.heading, self.bar, self.status, self.log, self.buttons):
            layout.addWidget(widget)
        self._started = 0.0

    def start(self) -> None:
        self._started = time.perf_counter()
        self.worker.start()

    def cancel(self) -> None:
        """First press asks the worker to stop after the current batch; once finished, closes."""
        if self.worker.isRunning():
            self.worker.cancel()
            self.status.setText("Cancelling after the current batch…")
            self.cancel_button.setEnabled(False)
        else:
            self.accept()

    def reject(self) -> None:  # Escape / window close
        self.cancel()

    def _progress(self, done: int, total: int) -> None:
        elapsed = time.perf_counter() - self._started
        rate = done / elapsed if elapsed > 0 else 0.0
        left = (total - done) / rate if rate > 0 else 0.0
        self.bar.setRange(0, max(total, 1))
        self.bar.setValue(done)
        self.status.setText(f"{done} / {total} frames · {rate:.1f} frames/s · {_clock(left)} left")

    def _done(self, report: BatchReport) -> None:
        self.report = report
        verb = "Cancelled" if report.cancelled else "Done"
        failures = f", {len(report.failures)} files failed" if report.failures else ""
        self.status.setText(f"{verb}: {report.frames} frames from {report.files} files in "
                            f"{_clock(report.seconds)} ({report.frames_per_second:.1f} frames/s){failures}")
        self._finish()
        csv_path = report.csv_path
        partial = csv_path.with_name(csv_path.name + ".partial") if csv_path is not None else None
        found = csv_path if csv_path is not None and csv_path.is_file() else partial
        if found is not None and found.is_file():
            self.results_ready.emit(found)

    def _failed(self, message: str) -> None:
        self.status.setText("Failed")
        self.log.appendPlainText(message)
        self._finish()

    def _finish(self) -> None:
        self.cancel_button.setText("Close")
        self.cancel_button.setEnabled(True)
        self.worker.wait()

    def closeEvent(self, event) -> None:
        if self.worker.isRunning():
            self.cancel()
            event.ignore()
        else:
            super().closeEvent(event)
