"""File > Open from PACS and File > Send label to PACS: the app's side of ``engine.pacs.dicomweb``.

Open from PACS: the server (URL, user and TLS remembered in QSettings; the password only for this
session, in memory), a search by patient ID and modality, the studies' series in a table, and the
chosen series pulled on a worker thread with progress and Cancel (:class:`PullDialog`) into a folder
(remembered), then opened; the study's SEGs come along, shown as the frames' ground truth.
Send label to PACS: the shown frame's label (and, if asked, each model's nodule and gland masks) as a
DICOM SEG referencing the frame, stored on the server on a worker thread (:class:`SendDialog`); a frame
not from DICOM gets a status line saying why not.
:class:`PacsActions` puts both in the window's File menu; the window holds one.
"""
from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QSettings, Qt, Signal
from PySide6.QtGui import QAction, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout,
                               QHBoxLayout, QHeaderView, QLabel, QLineEdit, QMenu, QPushButton, QTableView,
                               QVBoxLayout, QWidget)

from ...engine.io.dicom_seg import Segment, write_seg
from ...engine.models.library import user_home
from ...engine.pacs.dicomweb import PacsError, PullReport, PushReport, Server, Study, find, pull, push
from ...engine.progress import BatchProgress, Message, ProgressEvent
from ..workers import ThreadJob
from .job_dialog import JobDialog

SEG_MODALITY = "SEG"
COLUMNS = ("Patient ID", "Patient name", "Study date", "Study", "Series", "Modality", "Series description", "Instances")
UID_ROLE = Qt.ItemDataRole.UserRole + 1  # (study UID, series UID) of a row


# ----------------------------------------------------------------------------- job targets (worker threads)

def run_find(progress: Callable[[ProgressEvent], None], should_stop: Callable[[], bool], server: Server,
             patient: str | None, modality: str | None) -> list[Study]:
    return find(server, patient=patient, modality=modality)


def run_pull(progress: Callable[[ProgressEvent], None], should_stop: Callable[[], bool], server: Server,
             selection: dict[str, list[str]], out_dir: Path, total: int, with_segs: bool) -> PullReport:
    """Pull each study's chosen series in turn (``with_segs``: and the study's SEG series, which a search for
    another modality does not list); one report for all, progress in instances over ``total`` (the chosen
    series' instances as the search counted them)."""
    merged = PullReport()
    for study_uid, series in selection.items():
        if with_segs:
            segs = [s.uid for study in find(server, study=study_uid, modality=SEG_MODALITY) for s in study.series]
            series = list(dict.fromkeys([*series, *segs]))
        offset = len(merged.files)
        report = pull(server, study_uid, out_dir, series, should_stop=should_stop,
                      progress=lambda done, _total: progress(BatchProgress(offset + done, max(total, offset + done))))
        merged.files += report.files
        merged.fetched += report.fetched
        merged.notes += report.notes
        for note in report.notes:
            progress(Message(note))
        if report.cancelled:
            merged.cancelled = True
            break
    return merged


def run_send(progress: Callable[[ProgressEvent], None], should_stop: Callable[[], bool], server: Server,
             source: Path, frame_index: int, segments: list[Segment]) -> PushReport:
    """The frame's SEG, written to a temporary file and stored on the server."""
    with tempfile.TemporaryDirectory(prefix="thyroid-studio-seg-") as folder:
        path = write_seg(Path(folder) / "label_seg.dcm", source, frame_index, segments)
        return push(server, [path], should_stop=should_stop)


# ----------------------------------------------------------------------------- the server form


class ServerForm(QWidget):
    """URL, user, password and TLS of a DICOMweb server; all but the password are remembered in QSettings."""

    def __init__(self, settings: QSettings, password: str | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.url = QLineEdit(settings.value("pacs/url", "", str), self)
        self.url.setPlaceholderText("http://localhost:8042/dicom-web")
        self.user = QLineEdit(settings.value("pacs/user", "", str), self)
        self.user.setPlaceholderText("none")
        self.password = QLineEdit(password or "", self)
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setToolTip("Kept until the app closes, never written to disk")
        self.ca_bundle = QLineEdit(settings.value("pacs/ca_bundle", "", str), self)
        self.ca_bundle.setPlaceholderText("the system's certificates")
        self.insecure = QCheckBox("Do not check the server's TLS certificate", self)
        self.insecure.setChecked(settings.value("pacs/insecure", False, bool))
        layout = QFormLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for label, widget in (("Server URL", self.url), ("User", self.user), ("Password", self.password),
                              ("CA certificates (PEM)", self.ca_bundle), ("", self.insecure)):
            layout.addRow(label, widget)

    def server(self) -> Server:
        """The server as filled in (PacsError for a bad URL); remembers all but the password."""
        ca = self.ca_bundle.text().strip()
        if ca and not Path(ca).is_file():
            raise PacsError(f"{ca}: no such file of CA certificates")
        verify = False if self.insecure.isChecked() else ca or True
        server = Server.from_url(self.url.text(), self.user.text().strip() or None, self.password.text() or None,
                                 verify)
        for key, value in (("url", server.url), ("user", server.username or ""), ("ca_bundle", ca),
                           ("insecure", self.insecure.isChecked())):
            self.settings.setValue(f"pacs/{key}", value)
        return server


# ----------------------------------------------------------------------------- Open from PACS


class OpenFromPacsDialog(QDialog):
    """Search a server and choose series; ``chosen(server, {study: [series]}, folder, instances, with_segs)`` on
    Open."""

    chosen = Signal(object, object, object, int, bool)

    def __init__(self, settings: QSettings, password: str | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Open from PACS")
        self.resize(900, 560)
        self.settings = settings
        self.form = ServerForm(settings, password, self)
        self.patient = QLineEdit(self)
        self.patient.setPlaceholderText("any patient")
        self.modality = QLineEdit(settings.value("pacs/modality", "US", str), self)
        self.modality.setPlaceholderText("any modality")
        self.search_button = QPushButton("&Search", self)
        self.search_button.clicked.connect(self.search)
        search = QHBoxLayout()
        for widget in (QLabel("Patient ID", self), self.patient, QLabel("Modality", self), self.modality,
                       self.search_button):
            search.addWidget(widget)
        self.model = QStandardItemModel(0, len(COLUMNS), self)
        self.model.setHorizontalHeaderLabels(list(COLUMNS))
        self.table = QTableView(self)
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.doubleClicked.connect(lambda _index: self.accept())
        self.with_segs = QCheckBox("Also pull the studies' segmentations (SEG), shown as the frames' ground truth",
                                   self)
        self.with_segs.setChecked(True)
        self.folder = QLineEdit(settings.value("pacs/folder", str(user_home() / "pacs"), str), self)
        browse = QPushButton("Choose…", self)
        browse.clicked.connect(self._choose_folder)
        where = QHBoxLayout()
        for widget in (QLabel("Pull into", self), self.folder, browse):
            where.addWidget(widget)
        self.status = QLabel("Fill in the server and search. Research use, not diagnosis.", self)
        self.status.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel,
                                        self)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.form)
        layout.addLayout(search)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.with_segs)
        layout.addLayout(where)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)
        self.studies: list[Study] = []
        self.job: ThreadJob | None = None
        self.server: Server | None = None

    def search(self) -> None:
        """Search the server on a worker thread; the table is filled when it answers."""
        if self.job is not None and self.job.is_running():
            return
        try:
            self.server = self.form.server()
        except PacsError as exc:
            self._problem(str(exc))
            return
        modality = self.modality.text().strip().upper() or None
        self.settings.setValue("pacs/modality", modality or "")
        self.job = ThreadJob(run_find, {"server": self.server, "patient": self.patient.text().strip() or None,
                                        "modality": modality}, self)
        self.job.done.connect(self._found)
        self.job.failed.connect(lambda message: self._problem(message.splitlines()[0]))
        self.search_button.setEnabled(False)
        self.status.setText(f"Searching {self.server.url}…")
        self.job.start()

    def _found(self, studies: list[Study]) -> None:
        self.search_button.setEnabled(True)
        self.studies = studies
        self.model.removeRows(0, self.model.rowCount())
        for study in studies:
            for series in study.series:
                cells = (study.patient_id, study.patient_name, _date(study.date), study.description,
                         "" if series.number is None else str(series.number), series.modality, series.description,
                         "" if series.instances is None else str(series.instances))
                items = [QStandardItem(text) for text in cells]
                items[0].setData((study.uid, series.uid), UID_ROLE)
                self.model.appendRow(items)
        count = sum(len(study.series) for study in studies)
        self.status.setText(f"{len(studies)} studies, {count} series on {self.server.url}" if studies
                            else f"No study on {self.server.url} matches")
        self.status.setStyleSheet("")

    def _problem(self, message: str) -> None:
        """A failure: one line, in red (``PacsError: `` dropped)."""
        self.search_button.setEnabled(True)
        self.status.setText(message.removeprefix(f"{PacsError.__name__}: "))
        self.status.setStyleSheet("color: #c62828;")

    def selection(self) -> dict[str, list[str]]:
        """{study UID: [series UID]} of the selected rows."""
        chosen: dict[str, list[str]] = {}
        for index in self.table.selectionModel().selectedRows():
            study, series = self.model.item(index.row(), 0).data(UID_ROLE)
            chosen.setdefault(study, []).append(series)
        return chosen

    def accept(self) -> None:
        selection = self.selection()
        if not selection or self.server is None:
            self._problem("Search, then choose the series to open")
            return
        counts = {(s.study_uid, s.uid): s.instances or 0 for study in self.studies for s in study.series}
        total = sum(counts.get((study, series), 0) for study, many in selection.items() for series in many)
        folder = Path(self.folder.text().strip() or user_home() / "pacs")
        self.settings.setValue("pacs/folder", str(folder))
        self.chosen.emit(self.server, selection, folder, total, self.with_segs.isChecked())
        super().accept()

    def done(self, result: int) -> None:
        if self.job is not None:
            self.job.stop()
        super().done(result)

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder to pull studies into", self.folder.text())
        if folder:
            self.folder.setText(folder)


def _date(text: str) -> str:
    return f"{text[:4]}-{text[4:6]}-{text[6:]}" if len(text) == 8 and text.isdigit() else text


class PullDialog(JobDialog):
    """Pulls the chosen series on a worker thread (progress in instances, Cancel); ``pulled(folders)`` at the end
    with the series folders that were pulled whole."""

    pulled = Signal(object)  # list[Path]

    def __init__(self, server: Server, selection: dict[str, list[str]], out_dir: Path, total: int,
                 with_segs: bool = True, parent: QWidget | None = None) -> None:
        job = ThreadJob(run_pull, {"server": server, "selection": selection, "out_dir": out_dir, "total": total,
                                   "with_segs": with_segs})
        series = sum(len(many) for many in selection.values())
        segs = " (and the studies' SEGs)" if with_segs else ""
        super().__init__("Open from PACS", f"Pulling {series} series{segs} from {server.url}\ninto {out_dir}", job,
                         parent)
        self.resize(560, 260)
        self.status.setText("Asking the server for the instances…")

    def on_progress(self, event: ProgressEvent) -> None:
        if isinstance(event, BatchProgress):
            self.bar.setRange(0, max(event.total, 1))
            self.bar.setValue(event.done)
            self.status.setText(f"{event.done} / {event.total} instances")

    def on_done(self, report: PullReport) -> None:
        verb = "Cancelled: kept" if report.cancelled else "Pulled"
        self.status.setText(f"{verb} {len(report.files)} instances ({report.fetched} fetched, "
                            f"{len(report.files) - report.fetched} already there)")
        folders = list(dict.fromkeys(path.parent for path in report.files))
        if folders:
            self.pulled.emit(folders)
        if not report.cancelled:
            self.accept()


class SendDialog(JobDialog):
    """Stores one frame's SEG on the server on a worker thread; the outcome in its status line."""

    def __init__(self, server: Server, source: Path, frame_index: int, segments: list[Segment], name: str,
                 parent: QWidget | None = None) -> None:
        job = ThreadJob(run_send, {"server": server, "source": source, "frame_index": frame_index,
                                   "segments": segments})
        super().__init__("Send label to PACS", f"Sending the label of {name} to {server.url} as a DICOM SEG "
                         f"({len(segments)} segments)", job, parent)
        self.resize(520, 220)

    def on_done(self, report: PushReport) -> None:
        if report.failed:
            self.status.setText(f"Not stored: {report.failed[0][1]}")
            self.status.setStyleSheet("color: #c62828;")
        else:
            self.status.setText("Stored on the server")


class SendOptionsDialog(QDialog):
    """The server, and whether the models' masks go along as segments of their own."""

    def __init__(self, settings: QSettings, password: str | None, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Send label to PACS")
        self.form = ServerForm(settings, password, self)
        self.with_models = QCheckBox("Also send each model's nodule and gland masks, as segments of their own", self)
        self.status = QLabel(f"The label of {name} goes as a DICOM SEG that references its frame.", self)
        self.status.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Send")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        for widget in (self.form, self.with_models, self.status, buttons):
            layout.addWidget(widget)
        self.server: Server | None = None

    def accept(self) -> None:
        try:
            self.server = self.form.server()
        except PacsError as exc:
            self.status.setText(str(exc))
            self.status.setStyleSheet("color: #c62828;")
            return
        super().accept()


# ----------------------------------------------------------------------------- the window's actions


class PacsActions(QObject):
    """File > Open from PACS… and File > Send label to PACS…, added to ``menu`` where it is at construction.

    ``window`` is the main window: its ``settings``, ``worklist``, ``current`` row, ``open_paths`` and status bar."""

    def __init__(self, window: Any, menu: QMenu) -> None:
        super().__init__(window)
        self.window = window
        self.password: str | None = None  # this session's, never written anywhere
        self.open_action = self._add(menu, "Open from &PACS…", self.open_from_pacs, "Ctrl+Shift+P")
        self.send_action = self._add(menu, "Send &label to PACS…", self.send_label, None)
        self.dialog: QDialog | None = None  # the last dialog opened (tests drive it)

    def _add(self, menu: QMenu, text: str, slot: Callable[[], Any], shortcut: str | None) -> QAction:
        action = QAction(text, self.window)
        if shortcut:
            action.setShortcut(shortcut)
        action.triggered.connect(lambda *_: slot())
        menu.addAction(action)
        self.window.addAction(action)
        return action

    def _status(self, text: str) -> None:
        self.window.statusBar().showMessage(text, 10000)

    def open_from_pacs(self) -> OpenFromPacsDialog:
        dialog = OpenFromPacsDialog(self.window.settings, self.password, self.window)
        dialog.chosen.connect(self._pull)
        dialog.accepted.connect(lambda: self._keep_password(dialog.form))
        self.dialog = dialog
        dialog.open()
        return dialog

    def _keep_password(self, form: ServerForm) -> None:
        self.password = form.password.text() or None

    def _pull(self, server: Server, selection: dict[str, list[str]], folder: Path, total: int,
              with_segs: bool) -> None:
        dialog = PullDialog(server, selection, folder, total, with_segs, self.window)
        dialog.pulled.connect(self.window.open_paths)
        self.dialog = dialog
        dialog.show()
        dialog.start()

    def send_label(self) -> SendOptionsDialog | None:
        """The shown frame's label to the server as a SEG; a status line instead when there is no DICOM frame."""
        row = self.window.current
        if row is None:
            self._status("Open a frame first")
            return None
        worklist = self.window.worklist
        problem = worklist.seg_problem(row)
        if problem:
            self._status(f"No DICOM SEG of {worklist[row].name}: {problem}")
            return None
        entry = worklist[row]
        options = SendOptionsDialog(self.window.settings, self.password, entry.name, self.window)
        options.accepted.connect(lambda: self._send(options, row))
        self.dialog = options
        options.open()
        return options

    def _send(self, options: SendOptionsDialog, row: int) -> None:
        self._keep_password(options.form)
        worklist = self.window.worklist
        entry = worklist[row]
        segments = worklist.seg_segments(row, with_models=options.with_models.isChecked())
        dialog = SendDialog(options.server, entry.source, entry.index, segments, entry.name, self.window)
        self.dialog = dialog
        dialog.show()
        dialog.start()
