"""The main window with real widgets and events (pytest-qt, offscreen): open a real sample, AI contours
from tiny models, paint, undo, save, unsaved-edit prompts, autosave recovery, drag-and-drop, the batch
dialog, About and model choice, video frames, the cursor read-out, frame order and navigation keys, the
probability heat map and worst first; the list highlighting the frame shown, a new dataset folder typed in its
dialog, and shrinking the window (issue 18, item 7)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, QSettings, Qt, QTimer, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QDockWidget, QLineEdit, QMessageBox, QTextBrowser

from thyroid_studio.app.autosave import Autosave
from thyroid_studio.app.dialogs.about_dialog import AboutDialog
from thyroid_studio.app.dialogs.folder_dialog import NewFolderDialog
from thyroid_studio.app.dialogs.models_dialog import ModelsDialog, chosen_models
from thyroid_studio.app.launch import parse_args
from thyroid_studio.app.layers import HEATMAP
from thyroid_studio.app.main_window import CANVAS_MINIMUM, MainWindow
from thyroid_studio.engine.datasets.layouts import read_mask
from thyroid_studio.engine.labels.worklist import State

from app_driving import SAMPLE, SAMPLES, at, case_folder, key, open_and_wait, paint, reactivate

LEFT = Qt.MouseButton.LeftButton
Button = QMessageBox.StandardButton


def test_open_sample_shows_ai_contours_ground_truth_and_dice(qtbot, window):
    row = open_and_wait(qtbot, window)
    entry = window.worklist[row]
    assert entry.state is State.AI
    assert entry.models == {"trfe": "trfe-tiny", "unet": "unet-tiny"}
    truth = read_mask(SAMPLES / "mask" / "1.png")
    assert np.array_equal(window.canvas.label(), truth)  # green = ground truth
    assert window.layers_panel.rows["trfe"].dice.text().startswith("Dice ")
    assert window.layers_panel.rows["unet"].dice.text().startswith("Dice ")
    assert window.frames_model.data(window.frames_model.index(row)).split("\n")[1].startswith("AI")
    assert "For research, not diagnosis" in window.research_label.text()


@pytest.mark.slow
def test_paint_undo_autosave_and_crash_recovery(qtbot, window, tmp_path, answers):
    row = open_and_wait(qtbot, window)
    before = window.canvas.label()
    paint(qtbot, window, [(40, 40), (80, 45), (120, 50)])
    after = window.canvas.label()
    assert after[45, 80] and not before[45, 80] and (after != before).sum() > 500
    qtbot.waitUntil(lambda: window.worklist[row].state is State.CORRECTED)
    autosave = Autosave(tmp_path / "home" / "autosave")
    qtbot.waitUntil(lambda: len(autosave.pending().labels) == 1, timeout=5000)
    assert np.array_equal(autosave.pending().labels[0].label, after)

    # a new session after a crash offers the autosaved label back
    answers.append(Button.Yes)
    second = MainWindow(settings=QSettings(str(tmp_path / "s2.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(second)
    second.offer_recovery()
    recovered = second.worklist[second.worklist.row_of(SAMPLE)]
    assert recovered.state is State.CORRECTED and np.array_equal(recovered.label.mask, after)
    answers.append(Button.Discard)
    second.close()
    assert answers.asked[-1] == "Unsaved labels" and not autosave.pending()

    qtbot.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert np.array_equal(window.canvas.label(), before)  # exactly
    qtbot.waitUntil(lambda: window.worklist[row].state is State.AI)


def test_autosave_writes_again_only_the_labels_changed_since_it_last_ran(window, monkeypatch):
    """After a propagation (or a recovery) many labels are unsaved: an edit of one must not make the GUI
    thread rewrite all of them."""
    window.open_paths([SAMPLES / "image"])
    stored = []
    monkeypatch.setattr(window.keeper.autosave, "store", lambda source, index, *args: stored.append(source.name))
    labels = [window.worklist.label(row) for row in range(len(window.worklist))]
    for label in labels:
        label.replace(~label.mask, "Invert")
    window.keeper.autosave_all()
    assert sorted(stored) == ["1.png", "10005.png", "3.png"]
    stored.clear()
    labels[1].replace(~labels[1].mask, "Invert back")  # clean again: its file goes
    labels[2].replace(np.zeros_like(labels[2].mask), "Clear")
    window.keeper.autosave_all()
    assert stored == [window.worklist[2].source.name]


def test_accept_clean_and_save_writes_tn3k_png_and_record(qtbot, window, tmp_path):
    dataset = tmp_path / "dataset"
    window.settings.setValue("dataset/folder", str(dataset))
    row = open_and_wait(qtbot, window)
    entry = window.worklist[row]
    proposal = entry.predictions["trfe"].nodule_mask  # untrained weights: make the proposal known
    proposal[:] = False
    proposal[100:140, 200:260] = True
    qtbot.keyClick(window.canvas, Qt.Key.Key_A)  # Accept TRFE-Net mask as label
    assert np.array_equal(window.canvas.label(), entry.predictions["trfe"].nodule_mask)
    qtbot.keyClick(window.canvas, Qt.Key.Key_H)  # fill holes (undoable command)
    paint(qtbot, window, [(300, 200), (310, 205)])
    label = window.canvas.label()
    qtbot.keyClick(window.canvas, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    assert entry.state is State.SAVED
    mask = cv2.imread(str(dataset / "trainval-mask" / "0000.png"), cv2.IMREAD_UNCHANGED)
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 255} and np.array_equal(mask > 0, label)
    assert (dataset / "trainval-image" / "0000.png").read_bytes() == SAMPLE.read_bytes()
    assert (dataset / "tn3k-trainval-fold0.json").is_file()
    record = json.loads((dataset / "records.jsonl").read_text().splitlines()[-1])
    assert record["proposed_by"] == "trfe-tiny" and record["source"] == str(SAMPLE)
    assert 0 < record["dice_ai_vs_label"]["trfe-tiny"] < 1 and record["saved_at"]


def test_unsaved_edits_stay_with_their_frame_and_closing_asks_once(qtbot, window, answers):
    window.open_paths([SAMPLES / "image"])
    first = window.current
    paint(qtbot, window, [(60, 60), (90, 60)])
    painted = window.canvas.label()
    qtbot.keyClick(window.canvas, Qt.Key.Key_Right)  # next frame: no question, the edit stays with its frame
    assert window.current == first + 1 and answers.asked == [] and window.worklist.unsaved_rows() == [first]
    answers.append(Button.Cancel)
    window.close()
    assert window.isVisible() and answers.asked == ["Unsaved labels"]
    qtbot.keyClick(window.canvas, Qt.Key.Key_Left)
    assert window.current == first and np.array_equal(window.canvas.label(), painted)
    answers.append(Button.Discard)
    window.close()
    assert not window.isVisible() and len(answers.asked) == 2 and window.worklist.unsaved_rows() == []


def test_drag_and_drop_opens_a_file(qtbot, window):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(SAMPLE))])
    pos = QPointF(200, 200)
    enter = QDragEnterEvent(pos.toPoint(), Qt.DropAction.CopyAction, mime, LEFT, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    drop = QDropEvent(pos, Qt.DropAction.CopyAction, mime, LEFT, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, drop)
    assert window.worklist.row_of(SAMPLE) == window.current == 0


def test_batch_dialog_processes_a_folder_and_loads_results(qtbot, window, models, tmp_path):
    dialog = window.run_batch([SAMPLES / "image"], tmp_path / "out", models["trfe"])
    qtbot.waitUntil(lambda: dialog.report is not None, timeout=30000)
    assert dialog.report.frames == 3 and not dialog.report.cancelled
    assert (tmp_path / "out" / "segmentation.csv").is_file()
    assert "3 / 3 frames" in dialog.status.text() or "Done" in dialog.status.text()
    assert len(window.worklist) == 3 and all(e.state is State.AI for e in window.worklist.entries)
    dialog.cancel()  # now "Close"
    assert not dialog.isVisible()


def test_batch_dialog_can_be_cancelled(qtbot, window, models, tmp_path):
    inputs = tmp_path / "many"
    inputs.mkdir()
    for i in range(40):
        shutil.copy(SAMPLE, inputs / f"{i}.png")
    dialog = window.run_batch([inputs], tmp_path / "out", models["trfe"])
    dialog.cancel()
    qtbot.waitUntil(lambda: dialog.report is not None, timeout=30000)
    assert dialog.report.cancelled and dialog.report.frames < 40
    assert "Cancelled" in dialog.status.text()


def test_command_line_arguments():
    assert parse_args([]).paths == []
    assert parse_args(["a.png", "folder"]).paths == [Path("a.png"), Path("folder")]


def test_about_dialog_and_model_choice(qtbot, window, models):
    about = AboutDialog(window)
    qtbot.addWidget(about)
    pages = [browser.toPlainText() for browser in about.findChildren(QTextBrowser)]
    assert any("For research, not diagnosis" in p and "SPIE 9287" in p and "ISBI 2021" in p for p in pages)
    assert len(pages) == 3  # about + one card per model

    assert chosen_models(window.settings) == models
    dialog = ModelsDialog(window.settings, window)
    qtbot.addWidget(dialog)
    dialog.combos["unet"].setCurrentIndex(dialog.combos["unet"].findData(str(models["unet"])))
    dialog.accept()
    assert chosen_models(window.settings)["unet"] == models["unet"]


def test_video_frames_are_listed_and_stepped_with_arrow_keys(qtbot, window, tmp_path):
    video = tmp_path / "cine.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (96, 64))
    for i in range(4):
        writer.write(np.full((64, 96, 3), 40 * i, np.uint8))
    writer.release()
    window.open_paths([video])
    assert [e.name for e in window.worklist.entries] == [f"cine_f{i:04d}" for i in range(4)]
    assert window.current == 0
    for expected in (1, 2, 3, 3):
        qtbot.keyClick(window.canvas, Qt.Key.Key_Right)
        assert window.current == expected
    qtbot.keyClick(window.canvas, Qt.Key.Key_Left)
    assert window.current == 2 and "frame 3/4" in window.windowTitle()
    qtbot.waitUntil(lambda: len(window.worklist[2].predictions) == 2, timeout=20000)


def test_cursor_coordinates_only_over_the_image(qtbot, window):
    open_and_wait(qtbot, window)
    viewport = window.canvas.viewport()
    qtbot.mouseMove(viewport, at(window, 100.5, 50.5))
    assert window.cursor_label.text() == "x 100  y 50"
    window.canvas.zoom_by(0.3)
    corner = QPoint(2, 2)
    assert not window.canvas.image_rect().contains(window.canvas.mapToScene(corner))
    qtbot.mouseMove(viewport, corner)
    assert window.cursor_label.text() == ""


def test_frames_in_natural_order_without_masks_and_navigation_keys(qtbot, window, tmp_path):
    case = tmp_path / "case"
    numbers = [100, 71, 101, 9] + list(range(200, 215))
    for folder in ("image", "mask"):
        (case / folder).mkdir(parents=True)
        for number in numbers:
            cv2.imwrite(str(case / folder / f"{number}.png"), np.full((40, 60), number % 250, np.uint8))
    window.open_paths([case])
    order = window.frame_order
    shown = [order.index(r, 0).data().split("\n")[0] for r in range(order.rowCount())]
    assert shown == [str(n) for n in sorted(numbers)]  # 9, 71, 100, 101, ...; no mask listed
    names = lambda: window.worklist[window.current].name  # noqa: E731
    assert names() == "9"
    key(qtbot, window, Qt.Key.Key_End)
    assert names() == "214"
    key(qtbot, window, Qt.Key.Key_Home)
    assert names() == "9"
    key(qtbot, window, Qt.Key.Key_PageDown)
    assert names() == str(sorted(numbers)[10])
    key(qtbot, window, Qt.Key.Key_PageUp)
    assert names() == "9"
    key(qtbot, window, Qt.Key.Key_PageUp)
    assert names() == "9"


# ----------------------------------------------------------------------------- where the model is unsure

def test_probability_heat_map_layer(qtbot, window):
    row = open_and_wait(qtbot, window)
    heat = window.canvas.layer_item(HEATMAP)
    assert not heat.isVisible()  # optional: off by default
    box = window.layers_panel.rows[HEATMAP].visible
    qtbot.mouseClick(box, LEFT, pos=QPoint(6, box.height() // 2))
    assert heat.isVisible() and window.layers_panel.rows[HEATMAP].filled.isHidden()
    shape = window.worklist[row].predictions["trfe"].nodule_prob.shape
    assert (heat.pixmap().height(), heat.pixmap().width()) == shape


def test_worst_first_orders_by_uncertainty_and_navigation_follows(qtbot, window, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, image in enumerate(sorted((SAMPLES / "image").glob("*.png"))):
        shutil.copy(image, folder / f"{i}.png")
    window.open_paths([folder])
    window.worst_first_action.trigger()  # View > Worst first
    entries = window.worklist.entries
    qtbot.waitUntil(lambda: all(e.uncertainty is not None for e in entries), timeout=30000)
    expected = [e.name for e in sorted(entries, key=lambda e: -e.uncertainty)]
    order = window.frame_order
    assert [order.index(r, 0).data().split("\n")[0] for r in range(order.rowCount())] == expected
    assert all(" · unsure " in order.index(r, 0).data() for r in range(order.rowCount()))
    qtbot.keyClick(window.canvas, Qt.Key.Key_Home)
    assert window.worklist[window.current].name == expected[0]
    qtbot.keyClick(window.canvas, Qt.Key.Key_Right)
    assert window.worklist[window.current].name == expected[1]
    window.worst_first_action.trigger()  # off: the order they were opened in
    assert [order.index(r, 0).data().split("\n")[0] for r in range(order.rowCount())] == ["0", "1", "2"]


def test_the_measurements_panel_gives_the_lobe_of_the_trfe_nets_gland_and_nothing_without_one(qtbot, window):
    from thyroid_studio.engine.inference.segmenter import Segmentation

    row = open_and_wait(qtbot, window)
    entry = window.worklist[row]
    h, w = window.worklist.frame(row).pixels.shape[:2]
    gland = np.zeros((h, w), bool)
    gland[50:250, 100:400] = True
    nodule = np.zeros((h, w), bool)
    nodule[100:150, 200:260] = True
    informative = Segmentation(nodule.astype(np.float32), nodule, gland.astype(np.float32), gland, gland_share=0.3)
    window._prediction(entry.key, "trfe", informative, "tiny")  # as the inference worker delivers it
    values = window.measurements.values
    assert values["lobe_ap"].text() == "200 px" and values["lobe_width"].text() == "300 px"  # a PNG: pixels only
    assert window.canvas._overlays["gland"].isVisible()
    whole = Segmentation(nodule.astype(np.float32), nodule, gland.astype(np.float32), gland, gland_share=0.95)
    window._prediction(entry.key, "trfe", whole, "tiny")
    assert values["lobe_ap"].text() == "–" and values["lobe_width"].text() == "–"


# ----------------------------------------------------------------------------- the list, the folder dialog, the size


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
    key(qtbot, window, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
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
