"""Keeping labels: Save into the dataset folder chosen once, Discard, the Save / Discard / Cancel
question before unsaved edits could be lost, autosave, and recovery after a crash. The window
decides *when*; this module does it, over the Qt-free worklist."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from ..engine.datasets import DatasetError, DatasetWriter
from ..engine.worklist import Worklist
from .autosave import Autosave

Buttons = QMessageBox.StandardButton


class LabelKeeper:
    def __init__(self, parent: QWidget, worklist: Worklist, settings: QSettings, autosave: Autosave,
                 discarded: Callable[[int], None], message: Callable[[str], None]) -> None:
        """``discarded(row)`` after a row's edits are dropped; ``message(text)`` for the status bar."""
        self.parent, self.worklist, self.settings, self.autosave = parent, worklist, settings, autosave
        self.discarded, self.message = discarded, message

    def dataset_folder(self, ask: bool = False) -> Path | None:
        """The dataset folder for saved labels, asked once and remembered in QSettings."""
        folder = self.settings.value("dataset/folder", "", str)
        if ask or not folder:
            folder = QFileDialog.getExistingDirectory(self.parent, "Dataset folder for saved labels (TN3K layout)",
                                                      folder)
            if not folder:
                return None
            self.settings.setValue("dataset/folder", folder)
        return Path(folder)

    def save(self, rows: list[int]) -> bool:
        """Append each row's frame and label to the dataset; False if cancelled or failed (then shown)."""
        folder = self.dataset_folder()
        if folder is None:
            return False
        try:
            writer = DatasetWriter(folder)
            for row in rows:
                sample = self.worklist.save(row, writer)
                entry = self.worklist[row]
                self.autosave.remove(entry.source, entry.index)
                self.message(f"Saved {entry.name} as {sample.key} in {folder}")
        except (DatasetError, OSError, ValueError) as exc:
            QMessageBox.critical(self.parent, "Could not save", str(exc))
            return False
        return True

    def discard(self, rows: list[int]) -> None:
        for row in rows:
            entry = self.worklist[row]
            self.worklist.discard(row)
            self.autosave.remove(entry.source, entry.index)
            self.discarded(row)

    def resolve_unsaved(self, rows: list[int]) -> bool:
        """Ask Save / Discard / Cancel for the unsaved labels among ``rows``; False means cancelled."""
        rows = [row for row in rows if self.worklist[row].unsaved]
        if not rows:
            return True
        names = ", ".join(self.worklist[row].name for row in rows[:5]) + ("…" if len(rows) > 5 else "")
        answer = QMessageBox.question(
            self.parent, "Unsaved label", f"The label of {names} has unsaved edits. Save it to the dataset?",
            Buttons.Save | Buttons.Discard | Buttons.Cancel, Buttons.Save)
        if answer == Buttons.Save:
            return self.save(rows)
        if answer == Buttons.Discard:
            self.discard(rows)
            return True
        return False

    def autosave_all(self) -> None:
        """Mirror every unsaved label on disk (undone edits included: a clean frame's file is removed)."""
        for entry in self.worklist.entries:
            if entry.unsaved:
                self.autosave.store(entry.source, entry.index, entry.label, entry.proposed_by)
            else:
                self.autosave.remove(entry.source, entry.index)

    def recover(self) -> int | None:
        """Offer the labels a crashed session left; returns the first recovered row to show."""
        pending = self.autosave.pending()
        if not pending:
            return None
        answer = QMessageBox.question(
            self.parent, "Recover unsaved labels",
            f"{len(pending)} unsaved label(s) from the last session were kept. Recover them?",
            Buttons.Yes | Buttons.No, Buttons.Yes)
        if answer != Buttons.Yes:
            self.autosave.clear()
            return None
        self.worklist.add(dict.fromkeys(item.source for item in pending))
        rows = []
        for item in pending:
            row = self.worklist.row_of(item.source, item.index)
            if row is not None:
                self.worklist.set_label(row, item.label)
                self.worklist[row].proposed_by = item.proposed_by
                rows.append(row)
        return rows[0] if rows else None
