"""The window's smaller things (issue 18, item 7), through real widgets and events: the frame list highlights
the frame the canvas shows (after saving a frame the "Only propagated frames" list no longer holds, after a
click on an unreadable file); a new folder's name typed in the dataset-folder dialog makes it; shrinking the
window takes width from the side panels before the image."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QDockWidget, QLineEdit
from test_app import answers, models, window  # noqa: F401 (fixtures)
from test_app_models import reactivate
from test_app_saving import case_folder, key

from thyroid_studio.app.dialogs.folder_dialog import NewFolderDialog
from thyroid_studio.app.main_window import CANVAS_MINIMUM
from thyroid_studio.engine.labels.worklist import State

LEFT = Qt.MouseButton.LeftButton
CTRL = Qt.KeyboardModifier.ControlModifier


def highlighted(window) -> list[int]:
    """The worklist rows the frame list highlights."""
    return [window.frame_order.mapToSource(i).row() for i in window.frame_view.selectionModel().selectedIndexes()]


def click_row(qtbot, window, row: int) -> None:
    view = window.frame_view
    index = window.frame_order.mapFromSource(window.frames_model.index(row))
    view.scrollTo(index)
    qtbot.mouseClick(view.viewport(), LEFT, pos=view.visualRect(index).center())


def test_saving_a_frame_the_filtered_list_drops_leaves_no_other_frame_highlighted(qtbot, window, tmp_path):
    window.settings.setValue("dataset/folder", str(tmp_path / "dataset"))
    window.open_paths([case_folder(tmp_path / "case", 5)])
    for row in (1, 2, 3):
        window.worklist.set_propagated(row, np.ones((48, 64), bool), "litemedsam (propagated)")
    window.only_propagated_action.trigger()
    click_row(qtbot, window, 2)
    assert window.current == 2 and highlighted(window) == [2]
    key(qtbot, window, Qt.Key.Key_S, CTRL)
    assert window.worklist[2].state is State.SAVED and window.frame_order.rowCount() == 2
    assert window.current == 2 and highlighted(window) == []  # today: 3 is highlighted while 2 is shown
    key(qtbot, window, Qt.Key.Key_Right)  # stepping goes on from where the saved frame stood
    assert window.current == 3 and highlighted(window) == [3]


def test_clicking_an_unreadable_file_leaves_the_shown_frame_highlighted(qtbot, window, tmp_path):
    folder = case_folder(tmp_path / "case", 3)
    data = (folder / "2.png").read_bytes()
    (folder / "2.png").write_bytes(data[: len(data) // 3])  # a header that promises pixels that are not there
    window.open_paths([folder])
    assert window.current == 0 and len(window.worklist) == 3
    click_row(qtbot, window, 1)
    assert window.current == 0 and window.worklist[1].error  # today: 2 highlighted, 1 shown
    assert highlighted(window) == [0]


def type_in_next_folder_dialog(qtbot, name: str) -> None:
    """Once the folder dialog is up (its exec() blocks the test), type ``name`` and click Choose."""
    def act() -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, NewFolderDialog):
            QTimer.singleShot(20, act)
            return
        edit = dialog.findChild(QLineEdit, "fileNameEdit")
        qtbot.keyClicks(edit, name)
        qtbot.keyClick(edit, Qt.Key.Key_Return)
    QTimer.singleShot(0, act)


def test_a_new_folder_typed_in_the_dataset_folder_dialog_is_made(qtbot, window, tmp_path):
    window.settings.setValue("dataset/folder", str(tmp_path))
    type_in_next_folder_dialog(qtbot, "my-dataset")
    next(a for a in window.actions() if a.text() == "Choose &dataset folder…").trigger()
    reactivate(qtbot, window)
    assert (tmp_path / "my-dataset").is_dir()  # today: "Directory not found", and the dialog stays
    assert Path(window.settings.value("dataset/folder")) == tmp_path / "my-dataset"


def test_the_choose_button_takes_a_new_folder_name(qtbot, tmp_path):
    dialog = NewFolderDialog(None, "Dataset folder", str(tmp_path))
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.keyClicks(dialog.name_edit, "new")
    choose = dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Open)
    assert choose.isEnabled()
    qtbot.mouseClick(choose, LEFT)
    assert dialog.result() == 1 and (tmp_path / "new").is_dir() and dialog.selectedFiles() == [str(tmp_path / "new")]


def test_shrinking_the_window_takes_width_from_the_side_panels_first(qtbot, window, tmp_path):
    window.open_paths([case_folder(tmp_path / "case", 2)])
    window.resize(1280, 800)
    qtbot.waitUntil(lambda: window.width() == 1280)
    shares = []
    for width, height in ((1000, 700), (800, 600), (640, 480)):
        window.resize(width, height)
        qtbot.waitUntil(lambda: window.width() == width)
        qtbot.wait(50)  # the docks' new widths are laid out
        shares.append(window.canvas.width() / width)
        docks = [d for d in window.findChildren(QDockWidget) if d.isVisible()]
        assert max(d.width() for d in docks) < 0.3 * width
    # today: 315 of 1000, 115 of 800, 68 of 640 pixels for the image while the panels keep their width
    assert min(shares) > 0.45 and window.canvas.width() >= CANVAS_MINIMUM[0], shares
