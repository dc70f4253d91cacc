"""The fine-tune dialog through real widgets and events: a run on corrected frames with its loss and held-out
Dice curves, activating the new model or cancelling; "Keep current model" the default unless the held-out Dice
improved without forgetting (bug 10); fewer than eight corrected frames refused with a clear message."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PySide6.QtCore import Qt

from thyroid_studio.app.dialogs.finetune_dialog import FinetuneDialog
from thyroid_studio.engine.datasets.layouts import read_mask
from thyroid_studio.engine.datasets.writer import DatasetWriter
from thyroid_studio.engine.progress import Finished

from app_driving import SAMPLES

LEFT = Qt.MouseButton.LeftButton


@pytest.fixture
def corrected(tmp_path) -> Path:
    """A tiny TN3K-style dataset of corrected labels, as the app saves them."""
    writer = DatasetWriter(tmp_path / "corrected")
    for i, image in enumerate(sorted((SAMPLES / "image").glob("*.png")) * 3):
        pixels, mask = cv2.imread(str(image), cv2.IMREAD_GRAYSCALE), read_mask(SAMPLES / "mask" / image.name)
        shift = 7 * (i // 3)  # distinct frames (the writer stores an image only once); 9: fine-tuning needs 8
        writer.add(np.roll(pixels, shift, axis=1), np.roll(mask, shift, axis=1), source=f"{image}#{i}")
    return tmp_path / "corrected"


@pytest.mark.slow
def test_finetune_dialog_runs_and_activates_the_new_model(qtbot, window, models, corrected, tmp_path):
    dialog = window.run_finetune(corrected, models["trfe"], epochs=1, batch=2, replay_ratio=0.0, device="cpu")
    qtbot.waitUntil(lambda: dialog.result is not None or dialog.failure is not None, timeout=120000)
    assert dialog.result is not None and dialog.result.status == "finished", dialog.failure
    new = Path(dialog.result.checkpoint)
    assert new.is_file() and new.parent == tmp_path / "home" / "models"
    assert dialog.table.isVisible() and dialog.table.rowCount() >= 1
    assert len(dialog.loss_curve.xData) >= 2  # one point per step
    assert list(dialog.dice_curve.xData) == [0, 1]  # held-out Dice before and after the one epoch
    qtbot.mouseClick(dialog.activate_button, LEFT)
    assert window.settings.value("models/trfe") == str(new)
    assert models["trfe"].is_file()  # the old model stays available (rollback)


@pytest.mark.slow
def test_finetune_dialog_can_be_cancelled(qtbot, window, models, corrected):
    dialog = window.run_finetune(corrected, models["trfe"], epochs=500, batch=2, replay_ratio=0.0, device="cpu")
    qtbot.waitUntil(lambda: len(dialog._loss[0]) > 0, timeout=120000)
    dialog.cancel()
    qtbot.waitUntil(lambda: dialog.result is not None, timeout=60000)
    assert dialog.result.status == "stopped" and "Cancelled" in dialog.status.text()
    assert window.settings.value("models/trfe") is None


def _finished(before: float, after: float, original_change: float) -> Finished:
    row = {"n": 3, "before": {"dice": before}, "after": {"dice": after}}
    original = {"n": 50, "before": {"dice": 0.75}, "after": {"dice": 0.75 + original_change}}
    return Finished("finished", 12.0, "/models/tuned-v2.pt", {"held_out": row, "original_validation": original})


@pytest.mark.parametrize("before, after, original_change, activated", [
    (0.6566, 0.6537, 0.0, False),  # the corrections were not learnt
    (0.60, 0.70, -0.02, False),  # learnt, but the original frames lost 2 points
    (0.60, 0.70, -0.005, True),
])
def test_keep_current_model_is_the_default_unless_held_out_dice_improved_without_forgetting(
        qtbot, tmp_path, before, after, original_change, activated):
    dialog = FinetuneDialog(tmp_path / "corrected", tmp_path / "base.pt")
    qtbot.addWidget(dialog)
    requested = []
    dialog.activate_requested.connect(requested.append)
    dialog.show()
    dialog.job.done.emit(_finished(before, after, original_change))  # no process: the test plays the job's end
    assert dialog.keep_button.isDefault() is not activated and dialog.activate_button.isDefault() is activated
    qtbot.keyClick(dialog, Qt.Key.Key_Return)
    assert requested == ([Path("/models/tuned-v2.pt")] if activated else []) and not dialog.isVisible()
    if not activated:
        assert "keeping the current model is advised" in dialog.status.text()


@pytest.mark.slow
def test_finetuning_fewer_than_eight_frames_is_refused_with_a_clear_message(qtbot, window, models, tmp_path):
    writer = DatasetWriter(tmp_path / "few")
    for i, image in enumerate(sorted((SAMPLES / "image").glob("*.png")) * 2):
        pixels, mask = cv2.imread(str(image), cv2.IMREAD_GRAYSCALE), read_mask(SAMPLES / "mask" / image.name)
        shift = 7 * (i // 3)  # distinct frames: the writer stores an image only once
        writer.add(np.roll(pixels, shift, axis=1), np.roll(mask, shift, axis=1), source=f"{image}#{i}")
    dialog = window.run_finetune(tmp_path / "few", models["trfe"], epochs=1, device="cpu")
    qtbot.waitUntil(lambda: dialog.failure is not None, timeout=60000)
    assert "6 corrected frames" in dialog.status.text() and "needs at least 8" in dialog.status.text()
    assert dialog.result is None and not (tmp_path / "home" / "models").exists()
