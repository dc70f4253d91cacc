"""Keeping labels: Save into the dataset folder chosen once, through one ``DatasetWriter`` for that
folder (asking, for frames from DICOM, whether to black out burnt-in text, and before replacing the
saved mask of a frame already in the dataset), resuming frames found in the dataset, Discard, the
Save / Discard / Cancel question before unsaved edits could be lost, autosave, and recovery after a
crash. The window decides *when*; this module does it, over the Qt-free worklist."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from ..engine.datasets.index import Match
from ..engine.datasets.layouts import DatasetError
from ..engine.datasets.writer import AlreadySaved, DatasetWriter
from ..engine.io.frames import FrameReadError, is_dicom
from ..engine.labels.worklist import Worklist
from .autosave import Autosave, Leftovers

Buttons = QMessageBox.StandardButton
MAX_NAMES = 8  # frames named in a question; the rest are counted

DICOM_WARNING = (
    "Frames from DICOM files often carry the patient's name, dates or the hospital burnt into the "
    "pixels, outside the ultrasound image. Saved as they are, these identifiers go into the dataset "
    "and into every model trained on it.")
BLACK_OUT = "Black out outside the ultrasound region"
AS_IS = "Save as is"


def names(items: list[str]) -> str:
    """'a, b, c' or 'a, b, … and 3 more'."""
    shown = ", ".join(items[:MAX_NAMES])
    return shown + (f" and {len(items) - MAX_NAMES} more" if len(items) > MAX_NAMES else "")


class LabelKeeper:
    def __init__(self, parent: QWidget, worklist: Worklist, settings: QSettings, autosave: Autosave,
                 message: Callable[[str], None], folder_chosen: Callable[[Path], None] | None = None) -> None:
        """``message(text)`` for the status bar; ``folder_chosen(folder)`` after the user picks a dataset folder."""
        self.parent, self.worklist, self.settings, self.autosave = parent, worklist, settings, autosave
        self.message, self.folder_chosen = message, folder_chosen
        self.black_out: bool | None = None  # the answer about DICOM frames, asked once a session
        self._writer: DatasetWriter | None = None  # one for the dataset folder, kept across saves
        self._to_mirror: set[int] = set()  # rows changed since autosave_all last mirrored them
        worklist.subscribe(self)

    # worklist listener: which rows autosave must look at again
    def rows_inserting(self, first: int, last: int) -> None:
        pass

    def rows_inserted(self) -> None:
        pass

    def row_changed(self, row: int) -> None:
        self._to_mirror.add(row)

    def saved_folder(self) -> Path | None:
        """The dataset folder chosen before (None: not yet); never asks."""
        folder = self.settings.value("dataset/folder", "", str)
        return Path(folder) if folder else None

    def dataset_folder(self, ask: bool = False) -> Path | None:
        """The dataset folder for saved labels, asked once and remembered in QSettings."""
        folder = self.saved_folder()
        if ask or folder is None:
            chosen = QFileDialog.getExistingDirectory(self.parent, "Dataset folder for saved labels (TN3K layout)",
                                                      str(folder or ""))
            if not chosen:
                return None
            folder = Path(chosen)
            self.settings.setValue("dataset/folder", str(folder))
            if self.folder_chosen is not None:
                self.folder_chosen(folder)
        return folder

    def writer(self, folder: Path) -> DatasetWriter:
        """The one writer of ``folder`` (made on first use; DatasetError if the folder cannot be a dataset)."""
        if self._writer is None or self._writer.root != folder:
            self._writer = DatasetWriter(folder)
        return self._writer

    def save(self, rows: list[int]) -> bool:
        """Save each row's frame and label into the dataset; False if cancelled, declined or failed (then shown)."""
        folder = self.dataset_folder()
        if folder is None:
            return False
        black_out = self._black_out_choice(rows)
        if black_out is None:
            return False
        try:
            writer = self.writer(folder)
            return all(self._save_row(writer, row, black_out) for row in rows)
        except (DatasetError, FrameReadError, OSError, ValueError) as exc:
            QMessageBox.critical(self.parent, "Could not save", str(exc))
            return False

    def _save_row(self, writer: DatasetWriter, row: int, black_out: bool) -> bool:
        """Save one frame; a frame already in the dataset has its mask replaced only if the user says so."""
        entry = self.worklist[row]
        try:
            sample = self.worklist.save(row, writer, black_out=black_out)
        except AlreadySaved as saved:
            same = {"mask": saved.same_mask, "findings": saved.item.findings == entry.findings}
            changed = [what for what, unchanged in same.items() if not unchanged]
            if not changed:
                self.worklist.set_saved(row, self.worklist.label(row).mask, entry.findings)
                self.autosave.remove(entry.source, entry.index)
                self.message(f"{entry.name} is already saved as {saved.key}, with this label")
                return True
            answer = QMessageBox.question(
                self.parent, "Already in the dataset",
                f"Replace the saved {' and '.join(changed)} of {saved.key}?\n\n{entry.name} is already saved in "
                f"{writer.root} as {saved.key}; its current mask would be kept in the dataset's history/ folder.",
                Buttons.Yes | Buttons.No, Buttons.No)
            if answer != Buttons.Yes:
                self.message(f"{entry.name} not saved: {saved.key} keeps its saved {' and '.join(changed)}")
                return False
            sample = self.worklist.save(row, writer, black_out=black_out, replace=True)
        self.autosave.remove(entry.source, entry.index)
        seg = f", with its DICOM SEG {sample.seg.name}" if sample.seg else \
            f" (no DICOM SEG: {self.worklist.seg_problem(row) or 'it could not be made'})"
        self.message(f"Saved {entry.name} as {sample.key} in {writer.root}{seg}")
        return True

    def resumed(self, row: int, match: Match, mask: np.ndarray) -> None:
        """A frame found in the dataset: it opens with its saved label and findings, state "saved". Found by its
        record only (the pixels changed since it was saved): said in the status bar."""
        self.worklist.set_saved(row, mask, match.item.findings)
        if match.matched_by == "record":
            self.message(f"{self.worklist[row].name}: its pixels changed since it was saved as {match.item.key}; "
                         "the saved label is shown, and saving stores the frame as a new item")

    def _black_out_choice(self, rows: list[int]) -> bool | None:
        """For frames from DICOM: warn about burnt-in identifiers and ask whether to black out everything
        outside the ultrasound region (once a session); False for other frames, None if cancelled."""
        dicom = [self.worklist[row].name for row in rows if is_dicom(self.worklist[row].source)]
        if not dicom or self.black_out is not None:
            return bool(dicom) and bool(self.black_out)
        box = QMessageBox(QMessageBox.Icon.Warning, "Identifiers in DICOM frames",
                          f"{names(dicom)} came from DICOM.\n\n{DICOM_WARNING}", parent=self.parent)
        black_out = box.addButton(BLACK_OUT, QMessageBox.ButtonRole.AcceptRole)
        box.addButton(AS_IS, QMessageBox.ButtonRole.DestructiveRole)
        box.addButton(Buttons.Cancel)
        box.setDefaultButton(black_out)
        box.setInformativeText("The choice holds until the app is closed.")
        box.exec()
        clicked = box.clickedButton()
        if clicked is None or box.buttonRole(clicked) == QMessageBox.ButtonRole.RejectRole:
            return None
        self.black_out = clicked is black_out
        return self.black_out

    def discard(self, rows: list[int]) -> None:
        for row in rows:
            entry = self.worklist[row]
            self.worklist.discard(row)
            self.autosave.remove(entry.source, entry.index)

    def resolve_unsaved(self, rows: list[int]) -> bool:
        """Ask Save / Discard / Cancel for the unsaved labels among ``rows``; False means cancelled."""
        rows = [row for row in rows if self.worklist[row].unsaved]
        if not rows:
            return True
        answer = QMessageBox.question(
            self.parent, "Unsaved label",
            f"The label of {names([self.worklist[row].name for row in rows])} has unsaved edits. "
            "Save it to the dataset?", Buttons.Save | Buttons.Discard | Buttons.Cancel, Buttons.Save)
        if answer == Buttons.Save:
            return self.save(rows)
        if answer == Buttons.Discard:
            self.discard(rows)
            return True
        return False

    def autosave_all(self) -> None:
        """Mirror every unsaved label on disk (undone edits included: a clean frame's file is removed). Only
        rows changed since the last call are written again: after a propagation through a long clip, an
        edit of one frame must not rewrite the labels of all the others on the GUI thread."""
        for row in sorted(self._to_mirror):
            entry = self.worklist[row]
            if entry.unsaved:
                self.autosave.store(entry.source, entry.index, entry.label.mask, entry.proposed_by, entry.name,
                                    entry.label.findings)
            elif entry.label is not None:
                self.autosave.remove(entry.source, entry.index)
            self._to_mirror.discard(row)

    def recover(self) -> int | None:
        """Offer the labels a crashed session left, naming their frames, and name the leftovers that
        cannot be read (then removed); returns the first recovered row to show."""
        found = self.autosave.pending()
        if not found:
            return None
        unreadable = ("\n\nCould not be read, and will be removed:\n" + "\n".join(found.problems)
                      if found.problems else "")
        if not found.labels:
            QMessageBox.warning(self.parent, "Autosaved labels unreadable",
                                "The last session left autosaved labels that cannot be read." + unreadable)
            self.autosave.clear()
            return None
        answer = QMessageBox.question(
            self.parent, "Recover unsaved labels",
            f"Unsaved labels of {names([item.name for item in found.labels])} were kept from the last session. "
            f"Recover them?{unreadable}", Buttons.Yes | Buttons.No, Buttons.Yes)
        if answer != Buttons.Yes:
            self.autosave.clear()
            return None
        row = self._restore(found)
        self.autosave.clear()  # the damaged leftovers go; the recovered labels are stored afresh
        self.autosave_all()
        return row

    def _restore(self, found: Leftovers) -> int | None:
        self.worklist.add(dict.fromkeys(item.source for item in found.labels))
        rows, problems = [], []
        for item in found.labels:
            row = self.worklist.row_of(item.source, item.index)
            try:
                if row is None:
                    raise FrameReadError(item.source, "cannot be opened any more")
                label = self.worklist.label(row)
                if label.mask.shape != item.label.shape:
                    raise FrameReadError(item.source, f"the autosaved label is {item.label.shape[1]}x"
                                         f"{item.label.shape[0]}, the frame {label.mask.shape[1]}x{label.mask.shape[0]}")
            except FrameReadError as exc:
                problems.append(f"{item.name}: {exc}")
                continue
            label.replace(item.label, "Recover autosaved label", findings=item.findings)
            self.worklist[row].proposed_by = item.proposed_by
            rows.append(row)
        if problems:
            QMessageBox.warning(self.parent, "Some labels could not be recovered", "\n".join(problems))
        return rows[0] if rows else None
