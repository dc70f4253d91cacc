"""Model > Retrain / fine-tune: ``engine.training.finetuning.finetune`` in a separate process, its loss and
validation Dice plotted live, cancel, and at the end the before/after table and the choice to activate
the new checkpoint or keep the current one (the old checkpoint is never touched: rollback stays possible).
The table holds the rows measured (``finetuning.ROWS``: held-out corrections, and the original validation or, for
a source trained on all its frames, a fixed sample of its training frames); the advice under it
(``finetuning.advice``) names only those figures. When the held-out Dice did not improve, or the original frames
lost more than a point, "Keep current model" is the default."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QDialogButtonBox, QPushButton, QTableWidget, QTableWidgetItem, QWidget

from ...engine.progress import EpochProgress, Finished, ProgressEvent, StageProgress, StepProgress
from ...engine.training.finetuning import ROWS, advice, improved
from ..workers import ProcessJob, run_finetune
from .job_dialog import JobDialog


class FinetuneDialog(JobDialog):
    """Runs one fine-tuning when :meth:`start` is called; ``activate_requested(path)`` if the user
    chooses the new model."""

    activate_requested = Signal(object)  # Path of the new checkpoint

    def __init__(self, dataset: Path, base: Path, parent: QWidget | None = None, **options: Any) -> None:
        """``options`` are further ``FinetuneConfig`` fields (epochs, batch, lr, out, device...)."""
        job = ProcessJob(run_finetune, {"source": str(base), "nodules": str(dataset), **options})
        super().__init__("Fine-tune model", f"Fine-tuning {base.stem} on the corrected labels in {dataset}", job, parent)
        self.resize(620, 600)
        self.status.setText("Starting the training process…")
        self.loss_plot = pg.PlotWidget(self, title="Training loss")
        self.loss_plot.setLabel("bottom", "epoch")
        self.loss_curve = self.loss_plot.plot([], [], pen=pg.mkPen("#e53935", width=1.5))
        self.dice_plot = pg.PlotWidget(self, title="Validation Dice (held-out corrected frames)")
        self.dice_plot.setLabel("bottom", "epoch")
        self.dice_plot.setYRange(0, 1)
        self.dice_curve = self.dice_plot.plot([], [], pen=pg.mkPen("#43a047", width=2), symbol="o", symbolBrush="#43a047")
        self.table = QTableWidget(0, 4, self)
        self.table.setHorizontalHeaderLabels(["frames", "Dice before", "Dice after", "change"])
        self.table.setMaximumHeight(110)
        self.table.hide()
        for widget in (self.loss_plot, self.dice_plot, self.table):
            self.content.addWidget(widget)
        self.activate_button = QPushButton("Activate new model", self)
        self.keep_button = QPushButton("Keep current model", self)
        self.buttons.addButton(self.activate_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.addButton(self.keep_button, QDialogButtonBox.ButtonRole.RejectRole)
        self.activate_button.hide()
        self.keep_button.hide()
        self.activate_button.clicked.connect(self._activate)
        self.keep_button.clicked.connect(self.accept)
        self._loss: tuple[list[float], list[float]] = ([], [])
        self._dice: tuple[list[float], list[float]] = ([], [])

    def on_progress(self, event: ProgressEvent) -> None:
        if isinstance(event, StepProgress):
            self._loss[0].append(event.epoch - 1 + event.step / max(event.steps, 1))
            self._loss[1].append(event.loss)
            self.loss_curve.setData(*self._loss)
            self.bar.setRange(0, event.epochs * event.steps)
            self.bar.setValue((event.epoch - 1) * event.steps + event.step)
            self.status.setText(f"Epoch {event.epoch}/{event.epochs} · step {event.step}/{event.steps} · "
                                f"loss {event.loss:.4f}")
        elif isinstance(event, StageProgress):
            self.status.setText(f"{event.text[:1].upper()}{event.text[1:]}…")
        elif isinstance(event, EpochProgress) and "held_out_dice" in event.metrics:
            self._dice[0].append(event.epoch)
            self._dice[1].append(event.metrics["held_out_dice"])
            self.dice_curve.setData(*self._dice)

    def on_done(self, result: Finished) -> None:
        if result.status != "finished":
            self.status.setText("Cancelled: no new model was written; the current one stays active.")
            return
        self._fill_table(result.table)
        better = improved(result.table)
        self.status.setText(f"Done in {result.seconds:.0f} s: {Path(result.checkpoint).name}. Activate it, or keep "
                            f"the current model (both stay in Model > Choose models). {advice(result.table)}")
        self.cancel_button.hide()
        self.activate_button.show()
        self.keep_button.show()
        default = self.activate_button if better else self.keep_button
        for button in (self.cancel_button, self.activate_button, self.keep_button):
            button.setDefault(button is default)
        default.setFocus()

    def _fill_table(self, table: dict[str, Any]) -> None:
        rows = [(title[:1].upper() + title[1:], table[key]) for key, title in ROWS.items() if table.get(key)]
        self.table.setRowCount(len(rows))
        self.table.setVerticalHeaderLabels([title for title, _ in rows])
        for r, (_, row) in enumerate(rows):
            before, after = row["before"]["dice"], row["after"]["dice"]
            cells = (str(row["n"]), f"{before:.4f}", f"{after:.4f}", f"{100 * (after - before):+.2f} pt")
            for c, text in enumerate(cells):
                self.table.setItem(r, c, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()
        self.table.show()

    def _activate(self) -> None:
        self.activate_requested.emit(Path(self.result.checkpoint))
        self.accept()
