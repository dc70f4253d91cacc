"""The main window: wiring of actions, docks, the canvas and the workers. No business logic here:
frame states and labels (each with its findings and its own undo history) live in ``engine.labels.worklist``,
keeping labels (saving, resuming) in ``label_keeper``, editing in the canvas and its tools, work off the
GUI thread in ``workers``, report pages in ``engine.reports.page``."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence, QResizeEvent
from PySide6.QtWidgets import QDockWidget, QFileDialog, QLabel, QMainWindow, QMessageBox, QScrollArea, QWidget

from ..engine import geometry
from ..engine.datasets.index import Match
from ..engine.geometry import Point
from ..engine.inference.segmenter import Segmentation
from ..engine.io.frames import DICOM_EXTENSIONS, IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, FrameReadError
from ..engine.io.outputs import OutputPlan
from ..engine.labels.worklist import Entry, State, Worklist
from ..engine.models.checkpoint import CheckpointError, ModelMeta, read_meta
from ..engine.models.roles import MODEL_ROLES, PRIMARY_ROLE, ROLES
from ..report_pdf import write_report_pdf
from .autosave import Autosave
from .canvas import Canvas
from .dialogs.about_dialog import RESEARCH_NOTE, AboutDialog
from .dialogs.batch_dialog import BatchDialog
from .dialogs.finetune_dialog import FinetuneDialog
from .dialogs.job_dialog import JobDialog
from .dialogs.models_dialog import ModelsDialog, chosen_models
from .dialogs.pacs_dialog import PacsActions
from .frame_list import FrameListModel, FrameListView, FrameOrder
from .label_keeper import SAVE_WHEN_LEAVING, LabelKeeper
from .panels.findings_panel import FindingsPanel
from .panels.layers_panel import LayersPanel
from .panels.measurements_panel import MeasurementsPanel
from .prompt_worker import PromptWorker
from .propagation import Propagation
from .read_ahead import ReadAhead
from .scale_setter import ScaleSetter
from .workers import DatasetLookup, InferenceWorker

AUTOSAVE_MS = 1500
SIDE_SHARE = 0.25  # of the window's width the docks of one side keep at most as the window shrinks
CANVAS_MINIMUM = (360, 270)  # pixels: the image stays usable; below this the docks give up more width
PAGE = 10  # frames skipped by Page Up / Page Down
ACCEPT_KEYS = ("A", "Shift+A")  # accept the first, second... model role's mask as the label
BOX_HELP = "Box proposal: Enter or a click replaces the label, with Shift adds to it, with Alt subtracts; Esc drops it"
FILE_FILTER = "Frames ({});;All files (*)".format(
    " ".join(f"*{ext}" for ext in sorted(IMAGE_EXTENSIONS | DICOM_EXTENSIONS | VIDEO_EXTENSIONS)))
Key = QKeySequence.StandardKey


def scrolled(widget: QWidget) -> QScrollArea:
    """``widget`` in a scroll area, so that its dock can be smaller than it."""
    area = QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    return area


class MainWindow(QMainWindow):
    def __init__(self, settings: QSettings | None = None, autosave: Autosave | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Thyroid Studio")
        self.setAcceptDrops(True)
        self.resize(1280, 800)
        self.settings = settings if settings is not None else QSettings("thyroid-studio", "Thyroid Studio")
        self.worklist = Worklist()
        self.keeper = LabelKeeper(self, self.worklist, self.settings, autosave or Autosave(),
                                  lambda text: self.statusBar().showMessage(text, 6000),
                                  folder_chosen=lambda folder: self._look_up(range(len(self.worklist))))
        self.current: int | None = None
        self._selected: Point | None = None  # the nodule clicked on the shown frame; None: the largest

        self.canvas = Canvas(self)
        self.setCentralWidget(self.canvas)
        self.frames_model = FrameListModel(self.worklist, self)
        self.frame_order = FrameOrder(self.frames_model, self)
        self.frame_view = FrameListView(self.frame_order, self)
        self.frame_view.clicked.connect(lambda index: self.show_row(self.frame_order.mapToSource(index).row()))
        self.canvas.setMinimumSize(*CANVAS_MINIMUM)
        self.layers_panel = LayersPanel(self.canvas)
        self.measurements = MeasurementsPanel()
        self.measurements.measured.connect(self.canvas.set_diameters)  # draw the two diameters on the label
        self.findings_panel = FindingsPanel()
        self.findings_panel.finding_chosen.connect(self._set_finding)
        self.findings_panel.done.connect(lambda: self.canvas.setFocus())  # the frame keys work on at once
        self.measurements.measured.connect(self.findings_panel.set_size)
        for signal in (self.frame_order.rowsRemoved, self.frame_order.rowsInserted, self.frame_order.layoutChanged,
                       self.frame_order.modelReset):  # e.g. the shown frame saved while only propagated ones are listed
            signal.connect(lambda *_: self._select_in_list(self.current))
        self._dock("Frames", self.frame_view, Qt.DockWidgetArea.LeftDockWidgetArea)
        self._dock("Layers", scrolled(self.layers_panel), Qt.DockWidgetArea.RightDockWidgetArea)
        measurements = self._dock("Measurements", scrolled(self.measurements), Qt.DockWidgetArea.RightDockWidgetArea)
        findings = self._dock("Findings", scrolled(self.findings_panel), Qt.DockWidgetArea.RightDockWidgetArea)
        self.tabifyDockWidget(measurements, findings)  # the Findings panel shows the size too
        findings.raise_()

        self.inference = InferenceWorker(self)
        self.inference.result.connect(self._prediction)
        self.inference.scored.connect(self._scored)
        self.inference.failed.connect(self._prediction_failed)
        self.inference.busy.connect(lambda text: self.busy_label.setText(text))
        self.inference.start()
        self.lookup = DatasetLookup(self)
        self.lookup.found.connect(self._resumed)
        self.lookup.failed.connect(lambda text: self.statusBar().showMessage(text, 10000))
        self.lookup.busy.connect(lambda text: self.busy_label.setText(text))
        self.lookup.start()
        self.frames_model.rowsInserted.connect(lambda _parent, first, last: self._look_up(range(first, last + 1)))
        self._pixels = None  # the shown frame's pixels (the prompt worker's embeddings are keyed by this array)
        self.prompt_worker = PromptWorker(self)
        self.prompt_worker.proposal.connect(self._box_proposal)
        self.prompt_worker.failed.connect(self._box_failed)
        self.prompt_worker.start()
        self.canvas.box_drawn.connect(self._box_drawn)
        self.propagation = Propagation(self.worklist, self.prompt_worker.prompter, self)
        self.propagation.ended.connect(self._propagation_ended)
        self.read_ahead = ReadAhead(self.worklist, self.frame_order, self.inference, self.prompt_worker, self)
        self.scale_setter = ScaleSetter(self.worklist, self.canvas, self.settings, self.statusBar(),
                                        lambda: self.current, self)
        self.canvas.scale_drawn.connect(self.scale_setter.scale_drawn)
        self.scale_setter.changed.connect(self._calibration_changed)

        self._autosave_timer = QTimer(self, singleShot=True, interval=AUTOSAVE_MS)
        self._autosave_timer.timeout.connect(self.keeper.autosave_all)
        self.canvas.label_changed.connect(self._measure)
        self.canvas.edit_finished.connect(self._edit_finished)
        self.canvas.cursor_moved.connect(self._cursor_moved)
        self.canvas.nodule_clicked.connect(self._select_nodule)
        self.canvas.status_text.connect(lambda text: self.statusBar().showMessage(text, 4000))
        self._build_status_bar()
        self._build_menus()
        self._apply_models()

    # ------------------------------------------------------------ construction

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_status_bar(self) -> None:
        self.cursor_label, self.busy_label = QLabel(self), QLabel(self)
        self.research_label = QLabel(RESEARCH_NOTE, self)
        self.research_label.setStyleSheet("color: #c62828; font-weight: bold; padding: 0 6px;")
        for widget in (self.propagation, self.busy_label, self.cursor_label, self.research_label):
            self.statusBar().addPermanentWidget(widget)

    def _action(self, menu, text: str, slot: Callable, shortcut=None, checkable: bool = False) -> QAction:
        action = QAction(text, self, checkable=checkable)
        if shortcut is not None:
            action.setShortcuts(shortcut if isinstance(shortcut, list) else [QKeySequence(shortcut)])
        action.triggered.connect(lambda *_: slot())
        menu.addAction(action)
        self.addAction(action)  # shortcuts work whichever dock has focus
        return action

    def _build_menus(self) -> None:
        bar, a = self.menuBar(), self._action
        file = bar.addMenu("&File")
        a(file, "&Open files…", self._open_files_dialog, Key.Open)
        a(file, "Open &folder…", self._open_folder_dialog, "Ctrl+Shift+O")
        self.pacs = PacsActions(self, file)  # Open from PACS…, Send label to PACS… (app/dialogs/pacs_dialog.py)
        file.addSeparator()
        a(file, "&Save label to dataset", self.save_current, Key.Save)
        a(file, "Save &all corrected frames", self._save_all_corrected, "Ctrl+Shift+S")
        self.save_when_leaving_action = a(
            file, "Save to the dataset when &leaving a frame",
            lambda: self.settings.setValue(SAVE_WHEN_LEAVING, self.save_when_leaving_action.isChecked()),
            checkable=True)
        self.save_when_leaving_action.setChecked(self.settings.value(SAVE_WHEN_LEAVING, False, bool))
        a(file, "Choose &dataset folder…", lambda: self.keeper.dataset_folder(ask=True))
        a(file, "Export &report…", self._export_report, "Ctrl+E")
        file.addSeparator()
        a(file, "&Quit", self.close, Key.Quit)

        edit = bar.addMenu("&Edit")
        self.undo_action = a(edit, "&Undo", lambda: self.canvas.label_model.undo(), QKeySequence.keyBindings(Key.Undo))
        self.redo_action = a(edit, "&Redo", lambda: self.canvas.label_model.redo(),
                             [QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        edit.addSeparator()
        for role, key in zip(MODEL_ROLES, ACCEPT_KEYS):
            a(edit, f"Accept {ROLES[role].title} mask as label", lambda r=role: self._accept(r), key)
        a(edit, "&Fill holes", lambda: self._clean(geometry.fill_holes, "Fill holes"), "H")
        a(edit, "Keep &largest component", lambda: self._clean(geometry.largest_component, "Keep largest component"), "L")
        a(edit, "&Clear label", lambda: self._clean(np.zeros_like, "Clear label"), "Shift+Del")
        a(edit, "Clear calip&ers", lambda: self.canvas.label_model.clear_calipers())
        a(edit, "&Discard unsaved edits", self._discard_current)

        tools = bar.addMenu("&Tools")
        self.tool_actions = {}
        for name, text, key in (("pan", "&Pan / select nodule", "V"), ("brush", "&Brush", "B"),
                                ("eraser", "&Eraser", "E"), ("polygon", "P&olygon / lasso fill", "P"),
                                ("caliper", "&Caliper (two clicks)", "C"),
                                ("box", "Bo&x prompt: drag a box, get the nodule (LiteMedSAM)", "X"),
                                ("scale", "Set &scale: a length you know, as the depth ruler's", "K")):
            self.tool_actions[name] = a(tools, text, lambda n=name: self._set_tool(n), key, checkable=True)
        self.tool_actions[self.canvas.tool].setChecked(True)
        tools.addSeparator()
        a(tools, "Larger brush", lambda: self.canvas.step_brush(1), "]")
        a(tools, "Smaller brush", lambda: self.canvas.step_brush(-1), "[")
        a(tools, "&Forget the set scale (this file and its folder)", self.scale_setter.forget)

        self._build_cine_menu(bar.addMenu("&Cine"))

        view = bar.addMenu("&View")
        a(view, "Zoom to &fit", self.canvas.zoom_fit, "F")
        a(view, "&Actual size (1:1)", self.canvas.zoom_actual, "1")
        a(view, "Zoom &in", lambda: self.canvas.zoom_by(1.25), Key.ZoomIn)
        a(view, "Zoom &out", lambda: self.canvas.zoom_by(0.8), Key.ZoomOut)
        a(view, "&Reset brightness/contrast", self.layers_panel.reset_window, "R")
        view.addSeparator()
        a(view, "&Next frame", lambda: self._step(1), [QKeySequence("Right"), QKeySequence("Down")])
        a(view, "&Previous frame", lambda: self._step(-1), [QKeySequence("Left"), QKeySequence("Up")])
        a(view, f"{PAGE} frames on", lambda: self._step(PAGE), "PgDown")
        a(view, f"{PAGE} frames back", lambda: self._step(-PAGE), "PgUp")
        a(view, "Fi&rst frame", lambda: self._go(0), "Home")
        a(view, "&Last frame", lambda: self._go(len(self.worklist) - 1), "End")
        a(view, "Next &unsaved frame", self._next_unsaved, "N")
        self.worst_first_action = a(view, "&Worst first (the model's least sure frames on top)",
                                    lambda: self._order_worst_first(self.worst_first_action.isChecked()),
                                    checkable=True)
        view.addSeparator()
        for dock in self.findChildren(QDockWidget):
            view.addAction(dock.toggleViewAction())

        batch = bar.addMenu("&Batch")
        a(batch, "&Segment folder…", self._batch, "Ctrl+B")
        model = bar.addMenu("&Model")
        a(model, "&Choose models…", self._choose_models, "Ctrl+M")
        a(model, "&Use shipped defaults", self._use_shipped_models)
        a(model, "&Retrain / fine-tune from dataset…", self._finetune)
        help_menu = bar.addMenu("&Help")
        a(help_menu, "&About Thyroid Studio", lambda: AboutDialog(self).exec(), Key.HelpContents)
        self._update_undo_actions()

    def _build_cine_menu(self, cine) -> None:
        a = self._action
        a(cine, "&Propagate label to the next frames", self._propagate, "Shift+P")
        self.stop_propagation_action = a(cine, "&Stop propagating", self.propagation.stop, "Esc")
        self.stop_propagation_action.setEnabled(False)
        self.propagation.running_changed.connect(self.stop_propagation_action.setEnabled)
        a(cine, "&Accept propagated label", self._accept_propagated, "Ctrl+Return")
        self.only_propagated_action = a(
            cine, "&Only propagated frames (to review)",
            lambda: self.frame_order.set_only(State.PROPAGATED if self.only_propagated_action.isChecked() else None),
            checkable=True)

    # ------------------------------------------------------------ opening and showing frames

    def open_paths(self, paths: list[str | Path]) -> None:
        """Add files/folders to the frame list and show the first of them."""
        rows, errors = self.worklist.add(paths)
        if errors:
            QMessageBox.warning(self, "Some files could not be opened", "\n".join(errors[:20]))
        if rows:
            self.show_row(rows[0])
        self._queue_scoring()

    def show_row(self, row: int) -> bool:
        """Show a frame and start its inference. The frame left keeps its label, edited or not, with its undo
        history (no question; ``keeper.leaving`` saves a corrected one first when the user asked for that)."""
        if row == self.current or not 0 <= row < len(self.worklist):
            return row == self.current
        if self.current is not None:
            self.keeper.leaving(self.current)
        try:
            frame = self.worklist.frame(row)
            label = self.worklist.label(row)
        except FrameReadError as exc:
            self.worklist.set_error(row, str(exc))
            self.statusBar().showMessage(str(exc), 8000)
            self._select_in_list(self.current)  # the list highlights the frame the canvas shows
            return False
        previous, self.current, self._selected = self.current, row, None
        if previous is not None:
            self.worklist.release(previous)
        entry = self.worklist[row]
        self.frames_model.frame_decoded(row)
        self.canvas.set_image(frame.pixels, label, self.worklist.calibration(row))
        self._pixels = frame.pixels
        self._show_predictions()
        self.read_ahead.frame_shown(row, frame.pixels)  # the prompt worker's embedding too
        self.scale_setter.frame_shown(row, frame.pixels)
        self._select_in_list(row)
        self._label_shown()
        where = f" — frame {entry.index + 1}/{entry.count}" if entry.count > 1 else ""
        self.setWindowTitle(f"{entry.name}{where} — Thyroid Studio")
        return True

    def _select_in_list(self, row: int | None) -> None:
        """Highlight ``row`` in the frame list; nothing when it is not listed (filtered out) or None."""
        index = self.frame_order.mapFromSource(self.frames_model.index(row)) if row is not None else None
        if index is not None and index.isValid():
            self.frame_view.setCurrentIndex(index)
        else:
            self.frame_view.selectionModel().clear()

    def _go(self, view_row: int) -> None:
        """Show the frame at ``view_row`` of the list as ordered and filtered (clamped to the list)."""
        if self.frame_order.rowCount():
            view_row = min(max(view_row, 0), self.frame_order.rowCount() - 1)
            self.show_row(self.frame_order.mapToSource(self.frame_order.index(view_row, 0)).row())

    def _step(self, delta: int) -> None:
        self.read_ahead.stepped(delta)
        self._go(delta if self.current is None else self.frame_order.stepped(self.current, delta))

    def _next_unsaved(self) -> None:
        """Show the next frame of the list (as ordered, wrapping round) whose state is not "saved"."""
        count = self.frame_order.rowCount()
        if not count:
            return
        start = -1 if self.current is None else self.frame_order.stepped(self.current, 0)
        for step in range(1, count + 1):
            view_row = (start + step) % count
            if self.worklist[self.frame_order.mapToSource(self.frame_order.index(view_row, 0)).row()].state \
                    is not State.SAVED:
                self._go(view_row)
                return
        self.statusBar().showMessage("Every frame is saved", 4000)

    def _open_files_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Open frames", "", FILE_FILTER)
        if files:
            self.open_paths(files)

    def _open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of frames")
        if folder:
            self.open_paths([folder])

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)

    def _cursor_moved(self, position: Point | None) -> None:
        self.cursor_label.setText("" if position is None else f"x {int(position[0])}  y {int(position[1])}")

    # ------------------------------------------------------------ predictions and uncertainty

    def _prediction(self, key, role: str, result: Segmentation, model: str) -> None:
        row = self.worklist.row_of(*key)
        if row is None:
            return
        self.worklist.set_prediction(row, role, result, model)
        if row == self.current:
            self._show_prediction(role, result)
            self._update_panels()

    def _show_predictions(self) -> None:
        """Draw the shown frame's predictions and ask the worker for the missing ones."""
        entry = self.worklist[self.current]
        for role in MODEL_ROLES:
            self._show_prediction(role, entry.predictions.get(role))
        missing = tuple(role for role in MODEL_ROLES if role not in entry.predictions)
        if missing:
            self.inference.submit(entry.key, self.worklist.frame(self.current).pixels, missing)

    def _show_prediction(self, role: str, result: Segmentation | None) -> None:
        """A model role's nodule contour, the contours drawn from its other outputs (the gland), and for
        the primary model its probability (heat map); None clears them."""
        self.canvas.set_overlay(role, None if result is None else result.nodule_mask)
        for other in ROLES.values():
            if other.from_role == role:
                self.canvas.set_overlay(other.key, None if result is None else result.informative_gland)
                if (result is not None and result.gland_mask is not None and result.informative_gland is None
                        and not self.statusBar().currentMessage()):  # a note, never over a message the user needs
                    self.statusBar().showMessage(f"{other.title}: {ROLES[role].title} marks the whole ultrasound image "
                                                 "here, so no outline is drawn (its prior tells nothing on this frame)", 8000)
        if role == PRIMARY_ROLE:
            self.canvas.set_probability(None if result is None else result.nodule_prob)

    def _prediction_failed(self, key, message: str) -> None:
        row = self.worklist.row_of(*key)
        if row is not None:
            self.worklist.set_error(row, message)
        self.statusBar().showMessage(message, 10000)

    def _scored(self, key, uncertainty: float) -> None:
        row = self.worklist.row_of(*key)
        if row is not None:
            self.worklist.set_uncertainty(row, uncertainty)

    def _order_worst_first(self, on: bool) -> None:
        """Order the list by the primary model's uncertainty, scoring the frames not yet scored in the
        background; off: back to the order they were opened in."""
        self.frame_order.set_worst_first(on)
        self._queue_scoring()
        if self.current is not None:
            self.frame_view.scrollTo(self.frame_order.mapFromSource(self.frames_model.index(self.current)))

    def _queue_scoring(self) -> None:
        if self.frame_order.worst_first:
            self.inference.score([(e.key, e.source, e.index) for e in self.worklist.entries if e.uncertainty is None])

    # ------------------------------------------------------------ editing

    def _set_tool(self, name: str) -> None:
        self.canvas.set_tool(name)
        for tool, action in self.tool_actions.items():
            action.setChecked(tool == name)

    def _accept(self, role: str) -> None:
        mask = self.worklist.proposal(self.current, role) if self.current is not None else None
        if mask is None:
            self.statusBar().showMessage(f"No {ROLES[role].title} mask yet for this frame", 4000)
            return
        self.canvas.set_label(mask, f"Accept {ROLES[role].title} mask")

    def _clean(self, operation: Callable[[np.ndarray], np.ndarray], text: str) -> None:
        """Replace the label by ``operation(label)`` (fill holes, keep the largest component, clear): one edit."""
        if self.current is not None:
            self.canvas.set_label(operation(self.canvas.label_model.mask), text)

    def _set_finding(self, name: str, value: str | None) -> None:
        """A drop-down of the Findings panel: an edit of the shown label (undone like any other)."""
        if self.current is not None:
            self.canvas.label_model.set_finding(name, value)

    def _box_drawn(self, box) -> None:
        """The box tool drew a box: ask the prompt worker for its mask (at once when the embedding is ready)."""
        if self.current is None:
            return
        if not self.prompt_worker.ready(self._pixels):
            self.statusBar().showMessage("Box prompt: computing this frame's embedding…", 15000)
        self.prompt_worker.ask(self.worklist[self.current].key, self._pixels, box)

    def _box_proposal(self, key, box, mask) -> None:
        if self.current is not None and key == self.worklist[self.current].key \
                and self.canvas.show_box_proposal(box, mask):
            self.statusBar().showMessage(BOX_HELP, 10000)

    def _box_failed(self, key, message: str) -> None:
        if self.current is not None and key == self.worklist[self.current].key:
            self.statusBar().showMessage(message, 10000)

    def _propagate(self) -> None:
        problem = "Open a frame first" if self.current is None else self.propagation.start(self.current)
        if problem:
            self.statusBar().showMessage(problem, 8000)

    def _propagation_ended(self, text: str) -> None:
        self.statusBar().showMessage(text, 10000)
        self._autosave_timer.start()  # the propagated labels are unsaved edits too

    def _accept_propagated(self) -> None:
        if self.current is not None and not self.worklist.accept_propagated(self.current):
            self.statusBar().showMessage("This frame's label was not propagated", 4000)

    def _select_nodule(self, x: float, y: float) -> None:
        """A click with the pan tool: measure the nodule under (or nearest to) it."""
        if self.current is not None:
            self._selected = (x, y)
            self._measure()

    def _calibration_changed(self) -> None:
        """A scale was set or forgotten: the shown frame's calipers and measurements follow."""
        if self.current is not None:
            self.canvas.set_calibration(self.worklist.calibration(self.current))
            self._update_panels()

    def _measure(self) -> None:
        if self.current is not None:
            mask = self.canvas.label_model.mask
            self.measurements.update_measurements(mask, self.worklist.spacing_for(self.current, mask), self._selected)

    def _edit_finished(self) -> None:
        """An edit of the shown label completed (or was undone or redone)."""
        self._label_shown()
        self._autosave_timer.start()

    def _label_shown(self) -> None:
        self._update_undo_actions()
        self._update_panels()

    def _update_undo_actions(self) -> None:
        history = self.canvas.label_model.history
        self.undo_action.setEnabled(history.can_undo)
        self.undo_action.setText(f"&Undo {history.undo_text}".rstrip())
        self.redo_action.setEnabled(history.can_redo)
        self.redo_action.setText(f"&Redo {history.redo_text}".rstrip())

    def _update_panels(self) -> None:
        if self.current is None:
            return
        for role, dice in self.worklist.dice(self.current).items():
            self.layers_panel.set_dice(role, dice)
        self._measure()
        label, entry = self.canvas.label_model, self.worklist[self.current]
        self.measurements.show_calipers(label.calipers, self.worklist.calibration(self.current))
        self._show_lobe(entry.predictions.get(PRIMARY_ROLE), label.mask)
        self.findings_panel.show_frame(label.findings, entry.predictions.get(PRIMARY_ROLE), label.mask,
                                       self.worklist.spacing_for(self.current, label.mask))

    def _show_lobe(self, prediction: Segmentation | None, label: np.ndarray) -> None:
        """The lobe holding the label's nodule (the model's, without a label) in the Measurements panel."""
        lobe = prediction.lobe(label if label.any() else None) if prediction is not None else None
        self.measurements.show_lobe(geometry.measure(lobe, self.worklist.spacing_for(self.current, lobe))
                                    if lobe is not None else None)

    # ------------------------------------------------------------ saving, autosave, unsaved edits

    def save_current(self) -> bool:
        return self.current is not None and self.keeper.save([self.current])

    def _save_all_corrected(self) -> None:
        """File > Save all corrected frames: every frame in state "corrected", in one go, with one summary
        (propagated frames wait for their review)."""
        rows = self.worklist.rows_in(State.CORRECTED)
        waiting = len(self.worklist.rows_in(State.PROPAGATED))
        note = f"{waiting} propagated frame(s) not reviewed yet, not saved (Ctrl+Enter accepts one)" if waiting else ""
        if rows:
            self.keeper.save(rows, note=note)
        else:
            self.statusBar().showMessage("No corrected frame to save" + (f"; {note}" if note else ""), 8000)

    def _discard_current(self) -> None:
        if self.current is not None:
            self.keeper.discard([self.current])

    def _look_up(self, rows: range) -> None:
        """Look the frames of ``rows`` not saved yet up in the dataset folder (a worker), to resume them."""
        folder = self.keeper.saved_folder()
        entries = [self.worklist[row] for row in rows]
        frames = [(e.key, e.source, e.index) for e in entries if e.saved_label is None]
        if folder is not None and frames:
            self.lookup.look_up(folder, frames)

    def _resumed(self, key: tuple[str, int], match: Match, mask: np.ndarray) -> None:
        row = self.worklist.row_of(*key)
        if row is not None:
            self.keeper.resumed(row, match, mask)

    def _export_report(self) -> None:
        """File > Export report: a PDF of the shown frame (frame and contours, measurements, findings, TI-RADS)."""
        if self.current is None:
            self.statusBar().showMessage("Open a frame first", 4000)
            return
        entry = self.worklist[self.current]
        folder = self.settings.value("report/folder", str(entry.source.parent), str)
        path, _ = QFileDialog.getSaveFileName(self, "Export report", str(Path(folder) / f"{entry.name}.pdf"),
                                              "PDF (*.pdf)")
        if not path:
            return
        path = Path(path) if path.lower().endswith(".pdf") else Path(f"{path}.pdf")
        try:
            OutputPlan([entry.source]).check(path, "The report")  # never onto the frame's file, a folder or a dataset
            write_report_pdf(path, [self.worklist.report_page(self.current, self._primary_meta(entry))])
        except (FrameReadError, OSError, ValueError) as exc:
            QMessageBox.critical(self, "Could not export the report", str(exc))
            return
        self.settings.setValue("report/folder", str(path.parent))
        self.statusBar().showMessage(f"Report written to {path}", 6000)

    def _primary_meta(self, entry: Entry) -> ModelMeta | None:
        """The primary model's metadata for a report, when the shown prediction came from it (not a batch run)."""
        model = chosen_models(self.settings)[PRIMARY_ROLE]
        if model is None or PRIMARY_ROLE not in entry.predictions or PRIMARY_ROLE in entry.batch_roles:
            return None
        try:
            return read_meta(model)
        except CheckpointError:
            return None

    def offer_recovery(self) -> None:
        """After a crash: offer the labels autosaved by the last session, and show the first."""
        row = self.keeper.recover()
        if row is not None:
            self.show_row(row)

    def resizeEvent(self, event: QResizeEvent) -> None:
        """As the window shrinks, the side panels give up width before the image does."""
        super().resizeEvent(event)
        if self.isVisible() and event.oldSize().isValid() and event.size().width() < event.oldSize().width():
            widest = int(event.size().width() * SIDE_SHARE)
            for area in (Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea):
                docks = [dock for dock in self.findChildren(QDockWidget) if self.dockWidgetArea(dock) == area
                         and dock.isVisible() and not dock.isFloating()]
                if docks and max(dock.width() for dock in docks) > widest:
                    self.resizeDocks(docks, [widest] * len(docks), Qt.Orientation.Horizontal)

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.keeper.resolve_unsaved(self.worklist.unsaved_rows()):
            event.ignore()
            return
        for job in self.findChildren(JobDialog):
            job.stop()
        self.inference.stop()
        self.lookup.stop()
        self.propagation.close_job()
        self.prompt_worker.stop()
        self.scale_setter.stop()
        self.frames_model.stop()
        event.accept()

    # ------------------------------------------------------------ batch and models

    def _batch(self) -> None:
        source = QFileDialog.getExistingDirectory(self, "Folder to segment")
        out = QFileDialog.getExistingDirectory(self, "Folder for the masks and segmentation.csv") if source else ""
        model = chosen_models(self.settings)[PRIMARY_ROLE]
        if not out:
            return
        if model is None:
            QMessageBox.warning(self, "No model", f"No {ROLES[PRIMARY_ROLE].title} model is available; "
                                "choose one in Model > Choose models.")
            return
        self.run_batch([Path(source)], Path(out), model)

    def run_batch(self, paths: list[Path], out_dir: Path, model: Path) -> BatchDialog:
        """Open the batch dialog (non-modal) and start it; its results are loaded into the frame list."""
        dialog = BatchDialog(paths, out_dir, model, parent=self)
        dialog.results_ready.connect(self._load_batch_results)
        dialog.show()
        dialog.start()
        return dialog

    def _load_batch_results(self, csv_path: Path) -> None:
        rows, errors = self.worklist.load_batch_results(csv_path)
        if errors:
            QMessageBox.warning(self, "Some batch results could not be opened", "\n".join(errors[:20]))
        if rows and self.current is None:
            self.show_row(rows[0])
        elif self.current is not None:
            self._show_predictions()

    def _choose_models(self) -> None:
        before = chosen_models(self.settings)
        if ModelsDialog(self.settings, self).exec():
            self.models_changed(before)

    def _use_shipped_models(self) -> None:
        before = chosen_models(self.settings)
        for role in MODEL_ROLES:
            self.settings.remove(f"models/{role}")
        self.models_changed(before)

    def _apply_models(self) -> dict[str, Path | None]:
        models = chosen_models(self.settings)
        self.inference.set_models(models)
        missing = [ROLES[role].title for role, path in models.items() if path is None]
        if missing:
            self.statusBar().showMessage(f"No {' or '.join(missing)} model found: Model > Choose models…")
        return models

    def models_changed(self, before: dict[str, Path | None] | None = None) -> None:
        """A new model choice: forget the predictions of the roles whose model changed (batch results,
        files the user opened, stay) and segment the shown frame again."""
        models = self._apply_models()
        changed = [role for role in MODEL_ROLES if before is None or before.get(role) != models[role]]
        self.worklist.clear_predictions(changed)
        kept = sum(bool(entry.batch_roles & set(changed)) for entry in self.worklist.entries)
        if kept:
            self.statusBar().showMessage(f"Kept the batch results of {kept} frame(s); the new model segments "
                                         "the others", 8000)
        if self.current is not None:
            self._show_predictions()
            self._update_panels()
        self._queue_scoring()

    def _finetune(self) -> None:
        folder = self.keeper.dataset_folder()
        base = chosen_models(self.settings)[PRIMARY_ROLE]
        if folder is None or base is None:
            return
        self.run_finetune(folder, base)

    def run_finetune(self, dataset: Path, base: Path, **options) -> FinetuneDialog:
        dialog = FinetuneDialog(dataset, base, parent=self, **options)
        dialog.activate_requested.connect(self._activate_model)
        dialog.show()
        dialog.start()
        return dialog

    def _activate_model(self, path: Path) -> None:
        before = chosen_models(self.settings)
        self.settings.setValue(f"models/{PRIMARY_ROLE}", str(path))
        self.models_changed(before)
