"""The window of a long job (batch segmentation, fine-tuning): heading, progress bar, status line,
log, and a Cancel button that asks the job to stop and, once it has ended, becomes Close. The
batch and fine-tune dialogs add only what they draw of their progress events and results."""
from __future__ import annotations

from typing import Any

from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QLabel, QPlainTextEdit, QProgressBar, QPushButton,
                               QVBoxLayout, QWidget)

from ...engine.progress import Message, ProgressEvent, StageProgress
from ..workers import Job


class JobDialog(QDialog):
    """Runs ``job`` when :meth:`start` is called. Subclasses draw events in :meth:`on_progress` and the
    result in :meth:`on_done`; ``result`` holds it (a failure leaves it None and shows the message)."""

    def __init__(self, title: str, heading: str, job: Job, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.job = job
        job.setParent(self)
        job.progress.connect(self._progress)
        job.done.connect(self._done)
        job.failed.connect(self._failed)
        self.result: Any = None
        self.failure: str | None = None
        self.heading = QLabel(heading, self)
        self.heading.setWordWrap(True)
        self.bar = QProgressBar(self)
        self.status = QLabel("Starting…", self)
        self.status.setWordWrap(True)
        self.log = QPlainTextEdit(self, readOnly=True)
        self.log.setMaximumHeight(90)
        self.buttons = QDialogButtonBox(self)
        self.cancel_button = QPushButton("Cancel", self)
        self.buttons.addButton(self.cancel_button, QDialogButtonBox.ButtonRole.RejectRole)
        self.cancel_button.clicked.connect(self.cancel)
        self.content = QVBoxLayout()  # where a subclass puts its own widgets
        layout = QVBoxLayout(self)
        for widget in (self.heading, self.bar, self.status):
            layout.addWidget(widget)
        layout.addLayout(self.content, 1)
        layout.addWidget(self.log)
        layout.addWidget(self.buttons)

    def start(self) -> None:
        self.job.start()

    def cancel(self) -> None:
        """While the job runs: ask it to stop at its next check. Once it has ended: close."""
        if self.job.is_running():
            self.job.cancel()
            self.status.setText("Cancelling…")
            self.cancel_button.setEnabled(False)
        else:
            self.accept()

    def reject(self) -> None:  # Escape
        self.cancel()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.job.is_running():
            self.cancel()
            event.ignore()
        else:
            super().closeEvent(event)

    def stop(self) -> None:
        """The app closes: end the job now."""
        self.job.stop()

    # ----- what subclasses draw
    def on_progress(self, event: ProgressEvent) -> None:
        """A progress event other than a status line or a log line."""

    def on_done(self, result: Any) -> None:
        """The job's return value."""

    # ----- plumbing
    def _progress(self, event: ProgressEvent) -> None:
        if isinstance(event, Message):
            self.log.appendPlainText(event.text)
        elif isinstance(event, StageProgress):
            self.status.setText(event.text)
        else:
            self.on_progress(event)

    def _done(self, result: Any) -> None:
        self.result = result
        self._ended()
        self.on_done(result)

    def _failed(self, message: str) -> None:
        self.failure = message
        self.status.setText(f"Failed: {message.splitlines()[0]}")
        self.status.setToolTip(message)
        self.log.appendPlainText(message)
        self._ended()

    def _ended(self) -> None:
        self.cancel_button.setText("Close")
        self.cancel_button.setEnabled(True)
