"""The Choose models dialog through real widgets and events (bug 9): a U-Net cannot take the TRFE-Net slot
(roles checked against architectures), and new models chosen keep the batch results."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox

from thyroid_studio.app.dialogs.models_dialog import ModelsDialog, chosen_models
from thyroid_studio.engine.models.architectures import build_model
from thyroid_studio.engine.models.checkpoint import ModelMeta, save_checkpoint

from app_driving import SAMPLES, click_in_next_modal

LEFT = Qt.MouseButton.LeftButton


def test_a_unet_cannot_take_the_trfe_slot(qtbot, window, models):
    window.settings.setValue("models/trfe", str(models["unet"]))  # e.g. left by an older version
    dialog = ModelsDialog(window.settings, window)
    qtbot.addWidget(dialog)
    dialog.show()
    trfe = dialog.combos["trfe"]
    unet_row = trfe.findData(str(models["unet"]))
    assert not trfe.model().item(unet_row).isEnabled() and "cannot draw the TRFE-Net contour" in \
        trfe.model().item(unet_row).toolTip()
    assert trfe.currentData() == str(models["trfe"])  # the saved misfit is not offered as the choice
    for _ in range(3):
        qtbot.keyClick(trfe, Qt.Key.Key_Down)
        qtbot.keyClick(trfe, Qt.Key.Key_Up)
    assert trfe.currentData() == str(models["trfe"])  # the keyboard skips the U-Net
    qtbot.mouseClick(dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok), LEFT)
    assert chosen_models(window.settings)["trfe"] == models["trfe"]


def test_changing_models_keeps_batch_results(qtbot, window, models, tmp_path):
    dialog = window.run_batch([SAMPLES / "image"], tmp_path / "out", models["trfe"])
    qtbot.waitUntil(lambda: dialog.report is not None, timeout=30000)
    batch_masks = {e.key: e.predictions["trfe"].nodule_mask.copy() for e in window.worklist.entries}
    other = save_checkpoint(tmp_path / "home" / "models" / "trfe-other.pt", build_model("trfe-a", width=4),
                            ModelMeta(arch="trfe-a", width=4, input_size=(64, 64), name="trfe-other"))

    def choose_other(box) -> object:
        box.combos["trfe"].setCurrentIndex(box.combos["trfe"].findData(str(other)))
        return box.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok)

    click_in_next_modal(qtbot, choose_other)
    next(a for a in window.actions() if a.text() == "&Choose models…").trigger()
    assert chosen_models(window.settings)["trfe"] == other
    for entry in window.worklist.entries:
        assert np.array_equal(entry.predictions["trfe"].nodule_mask, batch_masks[entry.key])
        assert entry.models["trfe"] == "trfe-tiny" and "trfe" in entry.batch_roles
    assert "Kept the batch results of 3 frame(s)" in window.statusBar().currentMessage()
