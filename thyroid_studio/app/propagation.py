"""Cine propagation in the window: the shown frame's label carried through the following frames of its
clip (video or multi-frame DICOM) by LiteMedSAM box prompts, in a ``workers.ThreadJob``; each frame's
mask becomes that frame's label as one undoable edit, marked *propagated* for review
(``Worklist.set_propagated``). The widget is the progress shown in the status bar, with its Stop button."""
from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from ..engine.inference.prompting import PromptSegmenter
from ..engine.labels.worklist import Worklist
from .prompt_worker import PropagatedFrame, run_propagation
from .workers import ThreadJob

PROPAGATED_BY = "litemedsam (propagated)"  # the label's proposer, as saved in the dataset's records


class Propagation(QWidget):
    """Runs one propagation at a time: :meth:`start` from a row, :meth:`stop` (the Stop button, Esc)."""

    running_changed = Signal(bool)
    ended = Signal(str)  # how it ended, in words

    def __init__(self, worklist: Worklist, prompter: Callable[[], PromptSegmenter],
                 parent: QWidget | None = None) -> None:
        """``prompter()`` gives the prompt model (called on the job's thread: it may load it)."""
        super().__init__(parent)
        self.worklist, self._prompter = worklist, prompter
        self.job: ThreadJob | None = None
        self.text = QLabel(self)
        self.bar = QProgressBar(self)
        self.bar.setMaximumWidth(160)
        self.stop_button = QPushButton("Stop", self)
        self.stop_button.setToolTip("Stop propagating (Esc)")
        self.stop_button.clicked.connect(self.stop)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for widget in (self.text, self.bar, self.stop_button):
            layout.addWidget(widget)
        self.hide()

    @property
    def running(self) -> bool:
        return self.job is not None and self.job.is_running()

    def start(self, row: int) -> str | None:
        """Propagate ``row``'s label to the next frames of its clip; a reason when it cannot start."""
        entry = self.worklist[row]
        if self.running:
            return "A propagation is running: stop it first"
        if entry.count < 2:
            return f"{entry.name} is not part of a clip (a video or multi-frame DICOM): nothing to propagate to"
        rows = self.worklist.clip_rows(row)
        if not rows:
            return f"{entry.name} is the last frame of its clip"
        mask = self.worklist.label(row).mask
        if not mask.any():
            return "The label is empty: draw or accept a label to propagate first"
        self.job = ThreadJob(run_propagation, dict(prompter=self._prompter, source=entry.source,
                                                   start_index=entry.index, start_mask=mask.copy()), self)
        self.job.progress.connect(self._progress)
        self.job.done.connect(self._finish)
        self.job.failed.connect(lambda message: self._finish(f"Propagation failed: {message.splitlines()[0]}"))
        self.bar.setRange(0, len(rows))
        self.bar.setValue(0)
        self.text.setText(f"Propagating from frame {entry.index + 1}…")
        self.stop_button.setEnabled(True)
        self.show()
        self.job.start()
        self.running_changed.emit(True)
        return None

    def stop(self) -> None:
        """Ask the propagation to stop before its next frame."""
        if self.running:
            self.job.cancel()
            self.text.setText("Stopping…")
            self.stop_button.setEnabled(False)

    def close_job(self) -> None:
        """End now (the window closes): nothing more is applied."""
        if self.job is not None:
            self.job.stop()

    def _progress(self, event: object) -> None:
        if not isinstance(event, PropagatedFrame):
            return
        row = self.worklist.row_of(event.frame.source, event.frame.index)
        if row is None:
            return
        self.worklist.keep_frame(event.frame)  # decoded on the job's thread: not again on this one
        self.worklist.set_propagated(row, event.mask, PROPAGATED_BY)
        self.bar.setValue(event.done)
        if self.stop_button.isEnabled():
            self.text.setText(f"Propagated to frame {event.frame.index + 1} of {event.frame.count}")

    def _finish(self, text: str) -> None:
        self.job.deleteLater()
        self.job = None
        self.hide()
        self.running_changed.emit(False)
        self.ended.emit(text)
