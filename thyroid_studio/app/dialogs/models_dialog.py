"""Model > Choose models: which checkpoint draws each contour colour, among ``list_models()``.

Each model slot of ``engine/models/roles.py`` offers every model, but only those whose architecture fits
the role can be chosen (a U-Net has no gland prior: it cannot draw TRFE-Net's red contour). The
choice is remembered in QSettings ("models/<role>"); earlier and fine-tuned models stay in the user
folder, so choosing an older one is the rollback.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QWidget

from ...engine.models.architectures import arch_spec
from ...engine.models.checkpoint import CheckpointError
from ...engine.models.library import ModelEntry, default_model, list_models
from ...engine.models.roles import MODEL_ROLES, ROLES, fits


def chosen_models(settings: QSettings) -> dict[str, Path | None]:
    """Each role's checkpoint: the user's choice if it still exists, else the shipped default, else the
    first available model of a fitting architecture, else None."""
    out: dict[str, Path | None] = {}
    for role in MODEL_ROLES:
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
        fitting = [e.path for e in list_models() if fits(role, e.meta.arch)]
        out[role] = fitting[0] if fitting else None
    return out


def describe(entry: ModelEntry) -> str:
    meta = entry.meta
    dice = meta.validation_dice
    score = f", val Dice {dice:.3f}" if dice is not None else ""
    where = "shipped" if entry.shipped else "yours"
    return f"{meta.name or entry.path.stem} ({meta.arch}, {where}, {meta.created}{score})"


def _why_not(role: str, arch: str) -> str:
    try:
        title = arch_spec(arch).title
    except ValueError:
        return f"unknown architecture {arch!r}"
    return f"{title}: cannot draw the {ROLES[role].title} contour"


def _title(role: str) -> QLabel:
    """'■ TRFE-Net contour', the square in the role's colour."""
    r, g, b = ROLES[role].colour
    label = QLabel(f'<span style="color: rgb({r}, {g}, {b})">■</span> {ROLES[role].title} contour')
    label.setToolTip("Only models whose architecture fits this contour can be chosen")
    return label


class ModelsDialog(QDialog):
    """One combo box per model role; accepting stores the choice in ``settings``."""

    def __init__(self, settings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Choose models")
        self.settings = settings
        current = chosen_models(settings)
        skipped: list[str] = []
        entries = list_models(on_problem=skipped.append)
        form = QFormLayout(self)
        self.combos: dict[str, QComboBox] = {}
        for role in MODEL_ROLES:
            combo = QComboBox(self)
            items: QStandardItemModel = combo.model()
            for entry in entries:
                combo.addItem(describe(entry), str(entry.path))
                if not fits(role, entry.meta.arch):
                    item = items.item(combo.count() - 1)
                    item.setEnabled(False)
                    item.setToolTip(_why_not(role, entry.meta.arch))
            chosen = combo.findData(str(current[role])) if current[role] is not None else -1
            if chosen < 0 or not items.item(chosen).isEnabled():
                chosen = next((i for i in range(combo.count()) if items.item(i).isEnabled()), -1)
            combo.setCurrentIndex(chosen)
            self.combos[role] = combo
            form.addRow(_title(role), combo)
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
            index = combo.currentIndex()
            if index >= 0 and combo.model().item(index).isEnabled():
                self.settings.setValue(f"models/{role}", combo.currentData())
        super().accept()
