"""The main window: wiring of actions, docks, the canvas and the workers. No business logic here:
frame states live in ``engine.worklist``, keeping labels in ``saving``, editing in the canvas,
work off the GUI thread in ``workers``."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (QDockWidget, QFileDialog, QLabel, QMainWindow, QMessageBox, QWidget)

from ..engine.frames import DICOM_EXTENSIONS, IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, FrameReadError
from ..engine.worklist import ROLES, Worklist, cleaned
from .autosave import Autosave
from .canvas import Canvas
from .dialogs.about_dialog import RESEARCH_NOTE, AboutDialog
from .dialogs.batch_dialog import BatchDialog
from .dialogs.finetune_dialog import FinetuneDialog
from .dialogs.models_dialog import ModelsDialog, chosen_models
from .frame_list import FrameListModel, FrameListView
from .panels.layers_panel import LayersPanel
from .panels.measurements_panel import MeasurementsPanel
from .saving import LabelKeeper
from .workers import InferenceWorker

SYNC_MS = 40  # label -> worklist/measurements at most this often while painting
AUTOSAVE_MS = 1500
ROLE_NAMES = {"trfe": "TRFE-Net", "unet": "U-Net"}
FILE_FILTER = "Frames ({});;All files (*)".format(
    " ".join(f"*{ext}" for ext in sorted(IMAGE_EXTENSIONS | DICOM_EXTENSIONS | VIDEO_EXTENSIONS)))
Key = QKeySequence.StandardKey


class MainWindow(QMainWindow):
    def __init__(self, settings: QSettings | None = None, autosave: Autosave | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Thyroid Studio")
        self.setAcceptDrops(True)
        self.resize(1280, 800)
        self.settings = settings if settings is not None else QSettings("thyroid-studio", "Thyroid Studio")
        self.worklist = Worklist()
        self.keeper = LabelKeeper(self, self.worklist, self.settings, autosave or Autosave(), self._discarded,
                                  lambda text: self.statusBar().showMessage(text, 6000))
        self.current: int | None = None

        self.canvas = Canvas(self)
        self.setCentralWidget(self.canvas)
        self.frames_model = FrameListModel(self.worklist, self)
        self.frame_view = FrameListView(self.frames_model, self)
        self.frame_view.clicked.connect(lambda index: self.show_row(index.row()))
        self.layers_panel = LayersPanel(self.canvas)
        self.measurements = MeasurementsPanel()
        self.measurements.measured.connect(self.canvas.set_diameters)  # draw the two diameters on the label
        self._dock("Frames", self.frame_view, Qt.DockWidgetArea.LeftDockWidgetArea)
        self._dock("Layers", self.layers_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        self._dock("Measurements", self.measurements, Qt.DockWidgetArea.RightDockWidgetArea)

        self.inference = InferenceWorker(self)
        self.inference.result.connect(self._prediction)
        self.inference.failed.connect(self._prediction_failed)
        self.inference.busy.connect(lambda busy: self.busy_label.setText("Segmenting…" if busy else ""))
        self.inference.start()

        self._sync_timer = QTimer(self, singleShot=True, interval=SYNC_MS, timeout=self._sync_label)
        self._autosave_timer = QTimer(self, singleShot=True, interval=AUTOSAVE_MS)
        self._autosave_timer.timeout.connect(self.keeper.autosave_all)
        self.canvas.label_changed.connect(self._sync_timer.start)
        self.canvas.stroke_finished.connect(self._sync_label)
        self.canvas.cursor_moved.connect(lambda x, y: self.cursor_label.setText(f"x {int(x)}  y {int(y)}"))
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
        for widget in (self.busy_label, self.cursor_label, self.research_label):
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
        file.addSeparator()
        a(file, "&Save label to dataset", self.save_current, Key.Save)
        a(file, "Choose &dataset folder…", lambda: self.keeper.dataset_folder(ask=True))
        file.addSeparator()
        a(file, "&Quit", self.close, Key.Quit)

        edit = bar.addMenu("&Edit")
        undo = self.canvas.undo_stack.createUndoAction(self, "&Undo")
        undo.setShortcuts(QKeySequence.keyBindings(Key.Undo))
        redo = self.canvas.undo_stack.createRedoAction(self, "&Redo")
        redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        edit.addActions([undo, redo])
        edit.addSeparator()
        a(edit, "&Accept TRFE-Net mask as label", lambda: self._accept("trfe"), "A")
        a(edit, "Accept U-&Net mask as label", lambda: self._accept("unet"), "Shift+A")
        a(edit, "&Fill holes", lambda: self._clean("fill_holes", "Fill holes"), "H")
        a(edit, "Keep &largest component", lambda: self._clean("largest", "Keep largest component"), "L")
        a(edit, "&Clear label", lambda: self._clean("clear", "Clear label"), "Shift+Del")
        a(edit, "&Discard unsaved edits", self._discard_current)

        tools = bar.addMenu("&Tools")
        self.tool_actions = {}
        for name, text, key in (("pan", "&Pan", "V"), ("brush", "&Brush", "B"), ("eraser", "&Eraser", "E"),
                                ("polygon", "P&olygon / lasso fill", "P")):
            self.tool_actions[name] = a(tools, text, lambda n=name: self._set_tool(n), key, checkable=True)
        self.tool_actions[self.canvas.tool].setChecked(True)
        tools.addSeparator()
        a(tools, "Larger brush", lambda: self.canvas.step_brush(1), "]")
        a(tools, "Smaller brush", lambda: self.canvas.step_brush(-1), "[")

        view = bar.addMenu("&View")
        a(view, "Zoom to &fit", self.canvas.zoom_fit, "F")
        a(view, "&Actual size (1:1)", self.canvas.zoom_actual, "1")
        a(view, "Zoom &in", lambda: self.canvas.zoom_by(1.25), Key.ZoomIn)
        a(view, "Zoom &out", lambda: self.canvas.zoom_by(0.8), Key.ZoomOut)
        a(view, "&Reset brightness/contrast", self.layers_panel.reset_window, "R")
        view.addSeparator()
        a(view, "&Next frame", lambda: self._step(1), [QKeySequence("Right"), QKeySequence("Down")])
        a(view, "&Previous frame", lambda: self._step(-1), [QKeySequence("Left"), QKeySequence("Up")])
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

    # ------------------------------------------------------------ opening and showing frames

    def open_paths(self, paths: list[str | Path]) -> None:
        """Add files/folders to the frame list and show the first of them."""
        rows, errors = self.worklist.add(paths)
        if errors:
            QMessageBox.warning(self, "Some files could not be opened", "\n".join(errors[:20]))
        if rows:
            self.show_row(rows[0])

    def show_row(self, row: int) -> bool:
        """Show a frame (asking first about unsaved edits of the current one) and start its inference."""
        if row == self.current or not 0 <= row < len(self.worklist):
            return row == self.current
        self._sync_label()
        if self.current is not None and not self.keeper.resolve_unsaved([self.current]):
            self.frame_view.setCurrentIndex(self.frames_model.index(self.current))
            return False
        try:
            frame = self.worklist.frame(row)
        except FrameReadError as exc:
            self.worklist.set_error(row, str(exc))
            self.statusBar().showMessage(str(exc), 8000)
            return False
        self.current = row
        entry = self.worklist[row]
        self.frames_model.frame_decoded(row)
        self.canvas.set_image(frame.pixels, entry.current_label(frame.pixels.shape[:2]))
        for role, result in entry.predictions.items():
            self._show_prediction(role, result)
        self.frame_view.setCurrentIndex(self.frames_model.index(row))
        self._update_panels()
        missing = tuple(role for role in ROLES if role not in entry.predictions)
        if missing:
            self.inference.submit(entry.key, frame.pixels, missing)
        where = f" — frame {entry.index + 1}/{entry.count}" if entry.count > 1 else ""
        self.setWindowTitle(f"{entry.name}{where} — Thyroid Studio")
        return True

    def _step(self, delta: int) -> None:
        if len(self.worklist):
            self.show_row(min(max((self.current or 0) + delta, 0), len(self.worklist) - 1))

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

    # ------------------------------------------------------------ predictions

    def _prediction(self, key, role: str, result, model: str) -> None:
        row = self.worklist.row_of(*key)
        if row is None:
            return
        self.worklist.set_prediction(row, role, result, model)
        if row == self.current:
            self._show_prediction(role, result)
            self._update_panels()

    def _show_prediction(self, role: str, result) -> None:
        self.canvas.set_overlay(role, result.nodule_mask)
        if role == "trfe":
            self.canvas.set_overlay("gland", result.gland_mask)

    def _prediction_failed(self, key, message: str) -> None:
        row = self.worklist.row_of(*key)
        if row is not None:
            self.worklist.set_error(row, message)
        self.statusBar().showMessage(message, 10000)

    # ------------------------------------------------------------ editing

    def _set_tool(self, name: str) -> None:
        self.canvas.set_tool(name)
        for tool, action in self.tool_actions.items():
            action.setChecked(tool == name)

    def _accept(self, role: str) -> None:
        mask = self.worklist.proposal(self.current, role) if self.current is not None else None
        if mask is None:
            self.statusBar().showMessage(f"No {ROLE_NAMES[role]} mask yet for this frame", 4000)
            return
        self.canvas.set_label(mask, f"Accept {ROLE_NAMES[role]} mask")

    def _clean(self, operation: str, text: str) -> None:
        if self.current is not None:
            self.canvas.set_label(cleaned(self.canvas.label(), operation), text)

    def _sync_label(self) -> None:
        """Copy the canvas label into the worklist (which decides whether it is an edit) and refresh panels."""
        self._sync_timer.stop()
        if self.current is None:
            return
        if self.worklist.set_label(self.current, self.canvas.label()):
            self._autosave_timer.start()
        self._update_panels()

    def _update_panels(self) -> None:
        entry = self.worklist[self.current]
        for role, dice in self.worklist.dice(self.current).items():
            self.layers_panel.set_dice(role, dice)
        self.measurements.update_measurements(self.canvas.label(), entry.spacing_mm)

    # ------------------------------------------------------------ saving, autosave, unsaved edits

    def save_current(self) -> bool:
        self._sync_label()
        return self.current is not None and self.keeper.save([self.current])

    def _discard_current(self) -> None:
        if self.current is not None:
            self._sync_label()
            self.keeper.discard([self.current])

    def _discarded(self, row: int) -> None:
        """The shown label goes back to its baseline as an undoable command."""
        if row == self.current:
            label = self.worklist[row].current_label(self.canvas.label().shape)
            self.canvas.set_label(label, "Discard unsaved edits")

    def offer_recovery(self) -> None:
        """After a crash: offer the labels autosaved by the last session, and show the first."""
        self._sync_label()
        row = self.keeper.recover()
        if row is not None:
            self.current = None  # reload even if it is the frame shown
            self.show_row(row)

    def closeEvent(self, event: QCloseEvent) -> None:
        self._sync_label()
        if not self.keeper.resolve_unsaved(self.worklist.unsaved_rows()):
            event.ignore()
            return
        for batch in self.findChildren(BatchDialog):
            batch.worker.cancel()
            batch.worker.wait()
        for finetune in self.findChildren(FinetuneDialog):
            finetune.worker.kill()
        self.inference.stop()
        event.accept()

    # ------------------------------------------------------------ batch and models

    def _batch(self) -> None:
        source = QFileDialog.getExistingDirectory(self, "Folder to segment")
        out = QFileDialog.getExistingDirectory(self, "Folder for the masks and segmentation.csv") if source else ""
        model = chosen_models(self.settings)["trfe"]
        if not out:
            return
        if model is None:
            QMessageBox.warning(self, "No model", "No TRFE-Net model is available; choose one in Model > Choose models.")
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

    def _choose_models(self) -> None:
        if ModelsDialog(self.settings, self).exec():
            self.models_changed()

    def _use_shipped_models(self) -> None:
        for role in ROLES:
            self.settings.remove(f"models/{role}")
        self.models_changed()

    def _apply_models(self) -> None:
        models = chosen_models(self.settings)
        self.inference.set_models(models)
        missing = [ROLE_NAMES[role] for role, path in models.items() if path is None]
        if missing:
            self.statusBar().showMessage(f"No {' or '.join(missing)} model found: Model > Choose models…")

    def models_changed(self) -> None:
        """New model choice: forget predictions and segment the shown frame again."""
        self._apply_models()
        self.worklist.clear_predictions()
        if self.current is not None:
            self._sync_label()
            row, self.current = self.current, None
            self.show_row(row)

    def _finetune(self) -> None:
        folder = self.keeper.dataset_folder()
        base = chosen_models(self.settings)["trfe"]
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
        self.settings.setValue("models/trfe", str(path))
        self.models_changed()
