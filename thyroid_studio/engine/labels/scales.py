"""Scales the user set (the app's Set scale, as in ImageJ): a calibration kept for one file (every frame of
a clip) or for every file of a folder, which the worklist applies to the frames it opens.

A file's own rule wins over everything (the user measured on that file); then the file's own calibration
(a DICOM header); then its folder's rule, which fills in only files without a calibration of their own.
Rules are plain data (:meth:`ScaleRules.to_json`), so the app keeps them between sessions.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ..calibration import SOURCES, Calibration


@dataclass(frozen=True)
class Scope:
    """What a scale is kept for: ``place(source)`` is the file or folder a rule of this scope names."""

    key: str
    title: str  # as the Set scale dialog offers it
    place: Callable[[Path], Path]


SCOPES = {scope.key: scope for scope in (
    Scope("file", "This file (every frame of a clip)", lambda source: source),
    Scope("folder", "Every file in its folder without a calibration of its own", lambda source: source.parent),
)}


@dataclass(frozen=True)
class ScaleRule:
    scope: str  # a key of SCOPES
    place: Path  # absolute
    calibration: Calibration


def _absolute(path: str | os.PathLike) -> Path:
    return Path(os.path.abspath(path))


class ScaleRules:
    """The user's scales, by scope and place."""

    def __init__(self, rules: Iterable[ScaleRule] = ()) -> None:
        self._rules: dict[tuple[str, Path], ScaleRule] = {}
        for rule in rules:
            self._rules[rule.scope, rule.place] = rule

    def __iter__(self) -> Iterator[ScaleRule]:
        return iter(self._rules.values())

    def __len__(self) -> int:
        return len(self._rules)

    def set(self, source: str | os.PathLike, scope: str, calibration: Calibration) -> ScaleRule:
        """Keep ``calibration`` for ``source``'s file or folder (``scope``), replacing a rule kept there."""
        if scope not in SCOPES:
            raise ValueError(f"unknown scale scope {scope!r}; expected one of {', '.join(SCOPES)}")
        rule = ScaleRule(scope, SCOPES[scope].place(_absolute(source)), calibration)
        self._rules[scope, rule.place] = rule
        return rule

    def covering(self, source: str | os.PathLike) -> list[ScaleRule]:
        """The rules that apply to ``source``, its file's first."""
        path = _absolute(source)
        found = (self._rules.get((key, scope.place(path))) for key, scope in SCOPES.items())
        return [rule for rule in found if rule is not None]

    def forget(self, source: str | os.PathLike) -> list[ScaleRule]:
        """Remove the rules that apply to ``source``; returns them."""
        gone = self.covering(source)
        for rule in gone:
            del self._rules[rule.scope, rule.place]
        return gone

    def calibration(self, source: str | os.PathLike, own: Calibration | None) -> Calibration | None:
        """What ``source``'s frames are measured with: its file's rule, else ``own`` (the file's), else its folder's."""
        rules = {rule.scope: rule.calibration for rule in self.covering(source)}
        return rules.get("file") or own or rules.get("folder")

    def to_json(self) -> list[dict]:
        return [{"scope": r.scope, "place": str(r.place), "spacing_mm": list(r.calibration.spacing_mm),
                 "source": r.calibration.source} for r in self]

    @classmethod
    def from_json(cls, data: object) -> tuple[ScaleRules, list[str]]:
        """Rules read back (as :meth:`to_json` wrote them) and one line per entry that could not be read."""
        rules, problems = [], []
        for entry in data if isinstance(data, list) else []:
            try:
                spacing = tuple(float(v) for v in entry["spacing_mm"])
                if len(spacing) != 2 or not all(0 < v < float("inf") for v in spacing) \
                        or entry["scope"] not in SCOPES or entry["source"] not in SOURCES:
                    raise ValueError(entry)
                rules.append(ScaleRule(entry["scope"], _absolute(entry["place"]),
                                       Calibration(spacing, None, entry["source"])))
            except (KeyError, TypeError, ValueError):
                problems.append(f"a kept scale could not be read ({str(entry)[:80]}); it is forgotten")
        if not isinstance(data, list) and data is not None:
            problems.append("the kept scales could not be read; they are forgotten")
        return cls(rules), problems
