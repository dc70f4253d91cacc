"""Unsaved labels kept on disk (``user_home()/autosave``) until they are saved or discarded, so a crash
loses nothing: at the next start, whatever is still there is offered for recovery."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..engine.datasets import read_mask
from ..engine.files import write_mask_png, write_text_atomic
from ..engine.model_library import user_home


@dataclass(frozen=True)
class Recovered:
    source: Path
    index: int
    label: np.ndarray
    proposed_by: str | None


class Autosave:
    """One 0/255 PNG and one JSON per unsaved frame, named by a hash of (source, frame index)."""

    def __init__(self, folder: str | os.PathLike | None = None) -> None:
        self.folder = Path(folder) if folder is not None else user_home() / "autosave"

    def _stem(self, source: Path, index: int) -> str:
        return hashlib.sha1(f"{source}|{index}".encode()).hexdigest()[:16]

    def store(self, source: Path, index: int, label: np.ndarray, proposed_by: str | None = None) -> None:
        stem = self._stem(source, index)
        write_mask_png(self.folder / f"{stem}.png", label)
        info = {"source": str(source), "index": index, "proposed_by": proposed_by}
        write_text_atomic(self.folder / f"{stem}.json", json.dumps(info))

    def remove(self, source: Path, index: int) -> None:
        stem = self._stem(source, index)
        for suffix in (".json", ".png"):
            (self.folder / f"{stem}{suffix}").unlink(missing_ok=True)

    def pending(self) -> list[Recovered]:
        """What a previous session left unsaved; unreadable leftovers are skipped."""
        found = []
        for info_path in sorted(self.folder.glob("*.json")) if self.folder.is_dir() else []:
            try:
                info = json.loads(info_path.read_text(encoding="utf-8"))
                label = read_mask(info_path.with_suffix(".png"))
                found.append(Recovered(Path(info["source"]), int(info["index"]), label, info.get("proposed_by")))
            except (OSError, ValueError, KeyError):
                continue
        return found

    def clear(self) -> None:
        for path in list(self.folder.glob("*.json")) + list(self.folder.glob("*.png")) if self.folder.is_dir() else []:
            path.unlink(missing_ok=True)
