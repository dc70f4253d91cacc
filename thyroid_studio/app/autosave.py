"""Unsaved labels kept on disk (``user_home()/autosave``) until they are saved or discarded, so a crash
loses nothing: at the next start, whatever is still there is offered for recovery.

A power loss can leave any file half written (0 bytes, a truncated PNG, broken JSON); reading
them back never raises: what can be read is offered, what cannot is named and removed.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..engine.datasets.layouts import DatasetError, read_mask
from ..engine.findings.fields import Findings
from ..engine.io.files import write_mask_png, write_text_atomic
from ..engine.models.library import user_home


@dataclass(frozen=True)
class Recovered:
    source: Path
    index: int
    name: str  # the frame's name as the frame list shows it
    label: np.ndarray
    proposed_by: str | None
    findings: Findings = field(default_factory=Findings)  # the user's


@dataclass(frozen=True)
class Leftovers:
    """What a previous session left: the labels that can be read, and one line per file that cannot."""

    labels: list[Recovered] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.labels or self.problems)


class Autosave:
    """One 0/255 PNG and one JSON per unsaved frame, named by a hash of (source, frame index).
    The PNG is written first: a JSON names a complete label."""

    def __init__(self, folder: str | os.PathLike | None = None) -> None:
        self.folder = Path(folder) if folder is not None else user_home() / "autosave"

    def _stem(self, source: Path, index: int) -> str:
        return hashlib.sha1(f"{source}|{index}".encode()).hexdigest()[:16]

    def store(self, source: Path, index: int, label: np.ndarray, proposed_by: str | None = None,
              name: str | None = None, findings: Findings | None = None) -> None:
        stem = self._stem(source, index)
        write_mask_png(self.folder / f"{stem}.png", label)
        info = {"source": str(source), "index": index, "name": name or source.name, "proposed_by": proposed_by,
                "findings": dict(findings.values) if findings else {}}
        write_text_atomic(self.folder / f"{stem}.json", json.dumps(info))

    def remove(self, source: Path, index: int) -> None:
        stem = self._stem(source, index)
        for suffix in (".json", ".png"):
            (self.folder / f"{stem}{suffix}").unlink(missing_ok=True)

    def pending(self) -> Leftovers:
        """What a previous session left unsaved; never raises for a damaged leftover."""
        found = Leftovers()
        if not self.folder.is_dir():
            return found
        described = set()
        for info_path in sorted(self.folder.glob("*.json")):
            if info_path.name.startswith("."):
                continue  # a temporary file a crash left behind (see engine/io/files.py)
            described.add(info_path.stem)
            try:
                info = json.loads(info_path.read_text(encoding="utf-8"))
                source, index = Path(info["source"]), int(info["index"])
                name, proposed_by = str(info.get("name") or source.name), info.get("proposed_by")
                findings = Findings(info.get("findings") or {})
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                found.problems.append(f"{info_path.name}: the description of an autosaved label is damaged "
                                      f"({type(exc).__name__}); the frame is unknown")
                continue
            try:
                label = read_mask(info_path.with_suffix(".png"))
            except DatasetError:
                found.problems.append(f"{name}: its autosaved label is empty or damaged")
                continue
            found.labels.append(Recovered(source, index, name, label, proposed_by, findings))
        orphans = [p for p in self.folder.glob("*.png") if not p.name.startswith(".") and p.stem not in described]
        if orphans:
            found.problems.append(f"{len(orphans)} autosaved label(s) without their description; the frames are unknown")
        return found

    def clear(self) -> None:
        """Remove everything in the folder, temporary leftovers included."""
        for path in self.folder.iterdir() if self.folder.is_dir() else []:
            if path.is_file() and path.suffix in (".json", ".png"):
                path.unlink(missing_ok=True)
