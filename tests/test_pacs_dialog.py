"""File > Open from PACS and Send label to PACS through real widgets and a real Orthanc: search, the series
table, pulling on a worker with progress and Cancel, the study's SEG shown as ground truth, the label sent
back as a SEG; the server remembered, the password never written."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtWidgets import QDialogButtonBox

from thyroid_studio.app.dialogs.pacs_dialog import OpenFromPacsDialog, PullDialog, SendDialog, SendOptionsDialog
from thyroid_studio.engine.io.dicom_seg import Segment, instance_uid, read_seg, write_seg
from thyroid_studio.engine.pacs.dicomweb import find, pull

from app_driving import LEFT, SAMPLE, open_and_wait
from orthanc_server import PASSWORD, USER
from pacs_files import ddti_dicom, ddti_frames

SHAPE = (360, 560)


def nodule() -> np.ndarray:
    mask = np.zeros(SHAPE, bool)
    mask[120:200, 220:330] = True
    return mask


def fill(qtbot, form, orthanc, password: str = PASSWORD) -> None:
    for field, text in ((form.url, orthanc.dicomweb), (form.user, USER), (form.password, password)):
        field.clear()
        qtbot.keyClicks(field, text)


@pytest.fixture
def cine_on_server(orthanc, tmp_path, shared_data):
    """A 30-frame DDTI cine of patient TS-APP on the server, with a SEG of its frame 2; the cine file."""
    cine = ddti_dicom(tmp_path / "scanner" / "cine.dcm", ddti_frames(shared_data, 30), patient="TS-APP",
                      study_uid="1.2.826.0.1.3680043.10.543.90")
    seg = write_seg(tmp_path / "scanner" / "seg.dcm", cine, 2, [Segment("nodule", nodule())])
    orthanc.store(cine, seg)
    return cine


def search(qtbot, window, orthanc, password: str = PASSWORD, patient: str = "TS-APP") -> OpenFromPacsDialog:
    dialog = window.pacs.open_from_pacs()
    qtbot.waitExposed(dialog)
    fill(qtbot, dialog.form, orthanc, password)
    dialog.patient.clear()
    qtbot.keyClicks(dialog.patient, patient)
    qtbot.mouseClick(dialog.search_button, LEFT)
    qtbot.waitUntil(lambda: dialog.search_button.isEnabled(), timeout=20000)
    return dialog


def test_open_from_pacs_pulls_the_chosen_series_and_shows_the_seg_as_ground_truth(qtbot, window, orthanc,
                                                                                 cine_on_server, tmp_path):
    dialog = search(qtbot, window, orthanc)
    assert dialog.model.rowCount() == 1  # modality US: the cine's series, not the SEG's
    assert [dialog.model.item(0, c).text() for c in (0, 2, 5, 7)] == ["TS-APP", "2024-01-02", "US", "1"]
    dialog.table.selectRow(0)
    dialog.folder.setText(str(tmp_path / "pacs"))
    qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Open), LEFT)
    qtbot.waitUntil(lambda: len(window.worklist) == 30, timeout=30000)
    assert isinstance(window.pacs.dialog, PullDialog)

    row = next(r for r in range(30) if window.worklist[r].index == 2)
    assert window.show_row(row)
    entry = window.worklist[row]
    assert np.array_equal(entry.ground_truth, nodule()) and np.array_equal(window.canvas.label_model.mask, nodule())
    assert window.worklist[row].source.name == f"{instance_uid(cine_on_server)}.dcm"

    settings = window.settings
    settings.sync()
    saved = open(settings.fileName()).read()
    assert orthanc.dicomweb in saved and USER in saved and PASSWORD not in saved
    again = window.pacs.open_from_pacs()  # remembered: the server, and the password for this session only
    assert (again.form.url.text(), again.form.user.text(), again.form.password.text()) == (orthanc.dicomweb, USER,
                                                                                           PASSWORD)
    again.reject()


def test_a_pull_cancelled_midway_leaves_no_half_series(qtbot, window, orthanc, tmp_path, shared_data):
    frames = ddti_frames(shared_data, 20)  # a series of 20 single-frame instances
    orthanc.store(*(ddti_dicom(tmp_path / "scanner" / f"{i}.dcm", frame, patient="TS-APP-CANCEL", number=i + 1,
                               study_uid="1.2.826.0.1.3680043.10.543.92", series_uid="1.2.826.0.1.3680043.10.543.93")
                    for i, frame in enumerate(frames)))
    dialog = search(qtbot, window, orthanc, patient="TS-APP-CANCEL")
    assert dialog.model.item(0, 7).text() == "20"
    dialog.table.selectRow(0)
    dialog.with_segs.setChecked(False)
    dialog.folder.setText(str(tmp_path / "pacs"))
    dialog.accept()
    pulling = window.pacs.dialog
    pulling.job.progress.connect(lambda event: pulling.cancel_button.isEnabled() and pulling.cancel())
    qtbot.waitUntil(lambda: not pulling.job.is_running(), timeout=30000)
    assert pulling.status.text().startswith("Cancelled")
    assert not list((tmp_path / "pacs").rglob("*.dcm")) and len(window.worklist) == 0


def test_a_search_that_fails_is_one_line(qtbot, window, orthanc):
    dialog = search(qtbot, window, orthanc, password="wrong")
    assert dialog.status.text() == f"{orthanc.dicomweb}: the server refused the credentials (HTTP 401 " \
                                   "Unauthorized); check the user and password"
    assert dialog.model.rowCount() == 0
    dialog.reject()


def test_send_label_to_pacs_stores_it_as_a_seg_of_the_frame(qtbot, window, orthanc, tmp_path, shared_data):
    frame = ddti_dicom(tmp_path / "frame.dcm", ddti_frames(shared_data, 31)[30], patient="TS-SEND",
                       study_uid="1.2.826.0.1.3680043.10.543.91")
    orthanc.store(frame)
    row = open_and_wait(qtbot, window, frame)
    window.canvas.set_label(nodule(), "Paint")
    options = window.pacs.send_label()
    assert isinstance(options, SendOptionsDialog)
    fill(qtbot, options.form, orthanc)
    options.with_models.setChecked(True)
    qtbot.mouseClick(options.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok), LEFT)
    sending = window.pacs.dialog
    assert isinstance(sending, SendDialog)
    qtbot.waitUntil(lambda: not sending.job.is_running(), timeout=20000)
    assert sending.status.text() == "Stored on the server"

    server = orthanc.server()
    [study] = find(server, study="1.2.826.0.1.3680043.10.543.91", modality="SEG")
    [path] = pull(server, study.uid, tmp_path / "back", [study.series[0].uid]).files
    seg = read_seg(path)
    assert [(s.structure, s.algorithm.name if s.algorithm else None) for s in seg.segments] == [
        ("nodule", None), ("nodule", "trfe-tiny"), ("gland", "trfe-tiny"), ("nodule", "unet-tiny")]
    assert np.array_equal(seg.label_for(instance_uid(frame), 0, SHAPE), nodule())
    assert np.array_equal(seg.segments[1].masks[(instance_uid(frame), 0)],
                          window.worklist[row].predictions["trfe"].nodule_mask)


def test_send_label_of_a_frame_not_from_dicom_says_why(qtbot, window):
    open_and_wait(qtbot, window, SAMPLE)
    assert window.pacs.send_label() is None
    assert window.statusBar().currentMessage() == ("No DICOM SEG of 1: not a DICOM file, so there is no instance for "
                                                   "a SEG to reference")


def test_the_actions_are_in_the_file_menu(window):
    file_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&File")
    texts = [a.text() for a in file_menu.actions()]
    assert texts.index("Open from &PACS…") == texts.index("Open &folder…") + 1
    assert "Send &label to PACS…" in texts
    assert window.pacs.open_action.shortcut().toString() == "Ctrl+Shift+P"
    assert window.pacs.open_action in window.actions()  # the window's: its shortcut works whichever dock has focus
