"""Millimetres on every frame, in the app: the scale of each shown frame read off its burnt-in ruler (a
worker) and offered in the status bar, never applied; the Set scale flow (the tool's line, the dialog,
``Worklist.set_scale`` for the file or its folder); a permanent status-bar note of what the shown frame is
measured with and where that came from; the user's scales kept in the settings between sessions."""
from __future__ import annotations

import json
from collections.abc import Callable

from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtWidgets import QLabel, QStatusBar

from ..engine.geometry import Caliper
from ..engine.io.ruler import RulerProposal
from ..engine.labels.scales import SCOPES, ScaleRules
from ..engine.labels.worklist import Worklist
from .canvas import Canvas
from .dialogs.scale_dialog import ScaleDialog
from .workers import RulerWorker

SETTINGS_KEY = "scales/rules"  # the user's scales, as ScaleRules.to_json writes them
SHORTCUT = "K"


class ScaleSetter(QObject):
    """Reads rulers, sets and forgets scales, and says in the status bar what the shown frame is measured with."""

    changed = Signal()  # the shown frame's calibration changed (a scale set or forgotten)

    def __init__(self, worklist: Worklist, canvas: Canvas, settings: QSettings, status_bar: QStatusBar,
                 current: Callable[[], int | None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.worklist, self.canvas, self.settings, self.status_bar = worklist, canvas, settings, status_bar
        self._current = current
        self.label = QLabel(status_bar)
        status_bar.addPermanentWidget(self.label)
        try:
            kept = json.loads(settings.value(SETTINGS_KEY, "[]", str))
        except ValueError:
            kept = "unreadable"
        worklist.scales, problems = ScaleRules.from_json(kept)
        if problems:
            status_bar.showMessage(problems[0], 10000)
        self.worker = RulerWorker(self)
        self.worker.proposed.connect(self._proposed)
        self.worker.start()
        self.dialog: ScaleDialog | None = None  # the Set scale dialog while it is open

    def stop(self) -> None:
        self.worker.stop()

    def frame_shown(self, row: int, pixels) -> None:
        """A frame is shown: its ruler (read once, in the background) and what it is measured with."""
        entry = self.worklist[row]
        if entry.ruler_read:
            self.canvas.set_ruler(entry.ruler)
        else:
            self.worker.propose(entry.key, pixels)
        self._show(row)

    def _proposed(self, key: tuple[str, int], proposal: RulerProposal | None) -> None:
        row = self.worklist.row_of(*key)
        if row is None:
            return
        self.worklist.set_ruler(row, proposal)
        if row == self._current():
            self.canvas.set_ruler(proposal)
            self._show(row)

    def _show(self, row: int) -> None:
        calibration, proposal = self.worklist.calibration(row), self.worklist[row].ruler
        if calibration is not None:
            text = f"Scale: {calibration.describe()}"
        elif proposal is not None:
            text = f"Pixels only; the ruler reads {proposal.mm_per_px:.3g} mm/px: Set scale ({SHORTCUT}) to use it"
        else:
            text = f"Pixels only (Set scale: {SHORTCUT})"
        self.label.setText(text)
        self.label.setToolTip(proposal.describe() if proposal is not None else "")

    def scale_drawn(self, line: Caliper, proposal: RulerProposal | None) -> None:
        """The Set scale tool drew a line (``proposal``: the ruler's own): ask its length, then keep the scale."""
        row = self._current()
        if row is None:
            return
        self.dialog = ScaleDialog(line, proposal, self.worklist[row].calibration, self.canvas.window())
        self.dialog.accepted.connect(lambda dialog=self.dialog: self._set(row, dialog))
        self.dialog.finished.connect(lambda _result, dialog=self.dialog: self._closed(dialog))
        self.dialog.open()

    def _closed(self, dialog: ScaleDialog) -> None:
        dialog.deleteLater()
        if self.dialog is dialog:
            self.dialog = None

    def _set(self, row: int, dialog: ScaleDialog) -> None:
        calibration, scope = dialog.calibration(), dialog.scope()
        rows = self.worklist.set_scale(row, calibration, scope)
        self._keep()
        self.status_bar.showMessage(f"Scale set for {SCOPES[scope].title[0].lower()}{SCOPES[scope].title[1:]}: "
                                    f"{calibration.describe()} ({len(rows)} opened frame(s) changed)", 8000)
        self._update(row)

    def forget(self) -> None:
        """Tools > Forget the set scale: the shown frame's file and folder go back to their own calibration."""
        row = self._current()
        if row is None:
            return
        rows = self.worklist.forget_scale(row)
        self._keep()
        self.status_bar.showMessage(f"Set scales forgotten for this file and its folder ({len(rows)} opened frame(s) "
                                    "changed)", 6000)
        self._update(row)

    def _update(self, row: int) -> None:
        if row == self._current():
            self._show(row)
            self.changed.emit()

    def _keep(self) -> None:
        self.settings.setValue(SETTINGS_KEY, json.dumps(self.worklist.scales.to_json()))
