"""Choosing a folder that may not exist yet (the dataset folder for saved labels): a name typed into Qt's own
folder dialog is made, in the folder shown, instead of "Directory not found". A platform's native dialog, where
there is one, is used as it is (they have their own "new folder" button)."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QDialogButtonBox, QFileDialog, QLineEdit, QMessageBox, QWidget


class NewFolderDialog(QFileDialog):
    """A folder dialog whose Choose button also takes the name of a folder to make (beside existing ones)."""

    def __init__(self, parent: QWidget | None, title: str, start: str = "") -> None:
        super().__init__(parent, title, start)
        self.setFileMode(QFileDialog.FileMode.Directory)
        self.setOption(QFileDialog.Option.ShowDirsOnly)
        self.name_edit = self.findChild(QLineEdit, "fileNameEdit")  # None with a native dialog
        if self.name_edit is not None:
            self.name_edit.textChanged.connect(self._allow_new)

    def new_folder(self) -> Path | None:
        """The folder typed that does not exist yet, in one that does; None otherwise."""
        chosen = self.selectedFiles()
        path = Path(chosen[0]) if len(chosen) == 1 else None
        return path if path is not None and not path.exists() and path.parent.is_dir() else None

    def _allow_new(self) -> None:
        """Qt's dialog greys Choose out for a name that is no folder yet; a new folder's name is a choice too."""
        if self.new_folder() is not None:
            box = self.findChild(QDialogButtonBox)
            button = box.button(QDialogButtonBox.StandardButton.Open) if box is not None else None
            if button is not None:
                button.setEnabled(True)

    def accept(self) -> None:
        folder = self.new_folder()
        if folder is not None:
            try:
                folder.mkdir()
            except OSError as exc:
                QMessageBox.warning(self, self.windowTitle(), f"Cannot make {folder}: {exc.strerror or exc}")
                return
        super().accept()


def choose_folder(parent: QWidget | None, title: str, start: str | Path = "") -> Path | None:
    """The folder the user chose or named (made if new); None if cancelled."""
    dialog = NewFolderDialog(parent, title, str(start))
    if not dialog.exec():
        return None
    chosen = dialog.selectedFiles()
    return Path(chosen[0]) if chosen else None
