"""Keeping labels: Save into the dataset folder chosen once, through one ``DatasetWriter`` for that
folder, one frame or all the corrected ones with one summary (asking, for frames from DICOM, whether
to black out burnt-in text, and once before replacing the saved masks of frames already in the
dataset), resuming frames found in the dataset (by their file, else by their pixels, said), Discard,
the one Save / Discard / Cancel question when the app closes with unsaved labels, the optional save
when leaving a frame, autosave, and recovery after a crash. Edits live with their frame: leaving one
asks nothing. The window decides *when*; this module does it, over the Qt-free worklist."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox, QWidget

from ..engine.datasets.index import CONTENT, RECORD, Match
from ..engine.datasets.layouts import DatasetError
from ..engine.datasets.writer import AlreadySaved, DatasetWriter
from ..engine.io.frames import FrameReadError, is_dicom
from ..engine.labels.worklist import State, Worklist
from .autosave import Autosave, Leftovers
from .dialogs.folder_dialog import choose_folder

Buttons = QMessageBox.StandardButton
MAX_NAMES = 8  # frames named in a question; the rest are counted

DICOM_WARNING = (
    "Frames from DICOM files often carry the patient's name, dates or the hospital burnt into the "
    "pixels, outside the ultrasound image. Saved as they are, these identifiers go into the dataset "
    "and into every model trained on it.")
BLACK_OUT = "Black out outside the ultrasound region"
AS_IS = "Save as is"
SAVE_WHEN_LEAVING = "labels/save_when_leaving"  # QSettings: save a corrected label to the dataset on leaving its frame


def names(items: list[str]) -> str:
    """'a, b, c' or 'a, b, … and 3 more'."""
    shown = ", ".join(items[:MAX_NAMES])
    return shown + (f" and {len(items) - MAX_NAMES} more" if len(items) > MAX_NAMES else "")


@dataclass
class SaveReport:
    """What one Save did, a line per frame."""

    saved: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)  # already in the dataset with this label
    declined: list[str] = field(default_factory=list)  # already in the dataset; the user kept the saved label
    failed: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.declined and not self.failed


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
        """The dataset folder for saved labels, asked once (a new folder's name may be typed) and remembered."""
        folder = self.saved_folder()
        if ask or folder is None:
            chosen = choose_folder(self.parent, "Dataset folder for saved labels (TN3K layout)", folder or "")
            if chosen is None:
                return None
            folder = chosen
            self.settings.setValue("dataset/folder", str(folder))
            if self.folder_chosen is not None:
                self.folder_chosen(folder)
        return folder

    def writer(self, folder: Path) -> DatasetWriter:
        """The one writer of ``folder`` (made on first use; DatasetError if the folder cannot be a dataset)."""
        if self._writer is None or self._writer.root != folder:
            self._writer = DatasetWriter(folder)
        return self._writer

    def save(self, rows: list[int], note: str = "") -> bool:
        """Save each row's frame and label into the dataset: one frame said in the status bar, several in one
        summary (with ``note`` at its end). Frames already in the dataset with another label are replaced only
        if the user says so, asked once for all of them. False if cancelled, or if any frame was declined or
        failed (then said)."""
        folder = self.dataset_folder()
        if folder is None:
            return False
        black_out = self._black_out_choice(rows)
        if black_out is None:
            return False
        try:
            writer = self.writer(folder)
        except (DatasetError, OSError) as exc:
            QMessageBox.critical(self.parent, "Could not save", str(exc))
            return False
        report, conflicts = SaveReport(), []
        for row in rows:
            conflict = self._save_row(writer, row, black_out, report)
            if conflict is not None:
                conflicts.append((row, conflict))
        if conflicts:
            replace = self._replace_asked(writer, conflicts)
            for row, saved in conflicts:
                if replace:
                    self._save_row(writer, row, black_out, report, replace=True)
                else:
                    report.declined.append(f"{self.worklist[row].name} not saved: {saved.key} keeps its saved label")
        self._tell(writer, rows, report, note)
        return report.complete

    def _save_row(self, writer: DatasetWriter, row: int, black_out: bool, report: SaveReport,
                  replace: bool = False) -> AlreadySaved | None:
        """Save one frame into ``report``; the writer's AlreadySaved when the dataset holds it with another label."""
        entry = self.worklist[row]
        try:
            sample = self.worklist.save(row, writer, black_out=black_out, replace=replace)
        except AlreadySaved as saved:
            if saved.same_mask and saved.item.findings == entry.findings:
                self.worklist.set_saved(row, self.worklist.label(row).mask, entry.findings)
                self.autosave.remove(entry.source, entry.index)
                report.unchanged.append(f"{entry.name} is already saved as {saved.key}, with this label")
                return None
            return saved
        except (DatasetError, FrameReadError, OSError, ValueError) as exc:
            report.failed.append(f"{entry.name}: {exc}")
            return None
        self.autosave.remove(entry.source, entry.index)
        seg = f", with its DICOM SEG {sample.seg.name}" if sample.seg else \
            f" (no DICOM SEG: {self.worklist.seg_problem(row) or 'it could not be made'})"
        report.saved.append(f"Saved {entry.name} as {sample.key} in {writer.root}{seg}")
        return None

    def _replace_asked(self, writer: DatasetWriter, conflicts: list[tuple[int, AlreadySaved]]) -> bool:
        """Ask once whether the labels saved for these frames are to be replaced (the old masks go to history/)."""
        kept = "would be kept in the dataset's history/ folder."
        if len(conflicts) == 1:
            row, saved = conflicts[0]
            entry = self.worklist[row]
            changed = " and ".join(what for what, same in (("mask", saved.same_mask),
                                                            ("findings", saved.item.findings == entry.findings))
                                   if not same)
            title = f"Replace the saved {changed} of {saved.key}?"
            why = f"{entry.name} is already saved in {writer.root} as {saved.key}; its current mask {kept}"
        else:
            title = f"Replace the saved labels of {len(conflicts)} frames already in the dataset?"
            listed = names([f"{self.worklist[row].name} ({saved.key})" for row, saved in conflicts])
            why = f"{listed} are already saved in {writer.root}; their current masks {kept}"
        moved = [f"{self.worklist[row].name} has the same pixels as {saved.key}, saved from "
                 f"{saved.item.source or 'a file not recorded'}, which is not there any more (renamed or moved?)"
                 for row, saved in conflicts if saved.matched_by == CONTENT]
        text = f"{title}\n\n{why}" + "".join(f"\n\n{line}" for line in moved[:MAX_NAMES])
        answer = QMessageBox.question(self.parent, "Already in the dataset", text, Buttons.Yes | Buttons.No, Buttons.No)
        return answer == Buttons.Yes

    def _tell(self, writer: DatasetWriter, rows: list[int], report: SaveReport, note: str = "") -> None:
        """One frame: the status bar (a failure in a box); several: one summary."""
        if len(rows) == 1:
            if report.failed:
                QMessageBox.critical(self.parent, "Could not save", report.failed[0])
            else:
                self.message((report.saved + report.unchanged + report.declined)[0] + (f"; {note}" if note else ""))
            return
        lines = [f"Saved {len(report.saved)} of {len(rows)} frames in {writer.root}."]
        for title, items in (("Already saved with this label", report.unchanged), ("Not saved", report.declined),
                             ("Could not be saved", report.failed)):
            if items:
                lines.append(f"{title} ({len(items)}):\n" + "\n".join(items[:2 * MAX_NAMES])
                             + (f"\n… and {len(items) - 2 * MAX_NAMES} more" if len(items) > 2 * MAX_NAMES else ""))
        box = QMessageBox.information if report.complete else QMessageBox.warning
        box(self.parent, "Saved to the dataset", "\n\n".join(lines + ([note] if note else [])))

    def leaving(self, row: int) -> None:
        """The user leaves this frame: with "save to the dataset when leaving a frame" on, a corrected label is
        saved (a propagated one waits for review); either way the label stays with its frame."""
        if self.settings.value(SAVE_WHEN_LEAVING, False, bool) and self.worklist[row].state is State.CORRECTED:
            self.save([row])

    def resumed(self, row: int, match: Match, mask: np.ndarray) -> None:
        """A frame found in the dataset: it opens with its saved label and findings, state "saved". Found by its
        record while its pixels changed, or by its pixels only (its file renamed or moved): said in the status bar."""
        self.worklist.set_saved(row, mask, match.item.findings)
        name, item = self.worklist[row].name, match.item
        if match.matched_by == RECORD:
            self.message(f"{name}: its pixels changed since it was saved as {item.key}; "
                         "the saved label is shown, and saving stores the frame as a new item")
        elif match.matched_by == CONTENT:
            self.message(f"{name}: found in the dataset by its pixels only, as {item.key}, saved from "
                         f"{item.source or 'a file not recorded'}, which is not there any more (renamed or moved?)")

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
        """Ask once, naming them, whether the unsaved labels among ``rows`` are to be saved (Save / Discard /
        Cancel); False means cancelled, or not all of them saved."""
        rows = [row for row in rows if self.worklist[row].unsaved]
        if not rows:
            return True
        listed = [f"{e.name} (propagated, not reviewed)" if e.propagated else e.name
                  for e in (self.worklist[row] for row in rows)]
        answer = QMessageBox.question(
            self.parent, "Unsaved labels",
            f"{len(rows)} frame(s) have labels not saved to the dataset: {names(listed)}.\n\nSave them now?",
            Buttons.Save | Buttons.Discard | Buttons.Cancel, Buttons.Save)
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
