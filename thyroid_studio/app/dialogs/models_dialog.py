"""Model > Choose models: which checkpoint draws each contour colour, among ``list_models()``.

The choice is remembered in QSettings ("models/trfe", "models/unet"); earlier and fine-tuned
models stay in the user folder, so choosing an older one is the rollback.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QWidget

from ...engine.checkpoint import CheckpointError
from ...engine.model_library import ROLES, ModelEntry, default_model, list_models

ROLE_TITLES = {"trfe": "Red contour (TRFE-Net)", "unet": "Yellow contour (U-Net)"}


def chosen_models(settings: QSettings) -> dict[str, Path | None]:
    """Each role's checkpoint: the user's choice if it still exists, else the shipped default, else the
    first available model of a fitting architecture (gland head for red, U-Net for yellow), else None."""
    out: dict[str, Path | None] = {}
    for role in ROLES:
        choice = settings.value(f"models/{role}", "", str)
        if choice and Path(choice).is_file():
            out[role] = Path(choice)
            continue
        try:
            out[role] = default_model(role)
            if out[role].is_file():
                continue
        except CheckpointError:
            pass
        # Only now read every checkpoint's metadata: the usual case (a choice or a default) needs none.
        fits = [e.path for e in list_models() if (e.meta.arch == "unet") == (role == "unet")]
        out[role] = fits[0] if fits else None
    return out


def describe(entry: ModelEntry) -> str:
    meta = entry.meta
    dice = meta.validation_dice
    score = f", val Dice {dice:.3f}" if dice is not None else ""
    where = "shipped" if entry.shipped else "yours"
    return f"{meta.name or entry.path.stem} ({meta.arch}, {where}, {meta.created}{score})"


class ModelsDialog(QDialog):
    """One combo box per contour colour; accepting stores the choice in ``settings``."""

    def __init__(self, settings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Choose models")
        self.settings = settings
        current = chosen_models(settings)
        skipped: list[str] = []
        entries = list_models(on_problem=skipped.append)
        form = QFormLayout(self)
        self.combos: dict[str, QComboBox] = {}
        for role in ROLES:
            combo = QComboBox(self)
            for entry in entries:
                combo.addItem(describe(entry), str(entry.path))
            if current[role] is not None:
                combo.setCurrentIndex(max(0, combo.findData(str(current[role]))))
            self.combos[role] = combo
            form.addRow(ROLE_TITLES[role], combo)
        if not entries:
            form.addRow(QLabel("No models found: train one or put checkpoints in the models folder."))
        for line in skipped:  # a malformed checkpoint in the models folder: one line, the others still listed
            form.addRow(QLabel(f"Skipped {line}", wordWrap=True))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def accept(self) -> None:
        for role, combo in self.combos.items():
            if combo.currentData():
                self.settings.setValue(f"models/{role}", combo.currentData())
        super().accept()
