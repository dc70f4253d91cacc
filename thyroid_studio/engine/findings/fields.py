"""A nodule's findings as radiologists record them: the TI-RADS category and four descriptors.

``FIELDS`` is the one table of findings and their classes; the network's classification
heads output the classes in this order, ``labels.csv`` stores them by name, and the app's
drop-downs list them. The vocabulary is DDTI's (its XML case files, as in
``../shared/data/ddti/labels.csv``); the category is a Kwak-style TI-RADS, read by a
radiologist, not a pathology result. 4a and above is "suspicious".

``labels.csv`` has one row per frame: ``id`` (the frame's key) and one column per field,
an empty cell meaning unknown; other columns (sex, age, ...) are kept as they are.
"""
from __future__ import annotations

import difflib
import io
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..io.files import write_text_atomic
from ..io.tables import TableError, TableWriter, read_table

FIELDS: dict[str, tuple[str, ...]] = {
    "tirads": ("2", "3", "4a", "4b", "4c", "5"),
    "composition": ("cystic", "predominantly-cystic", "spongiform", "predominantly-solid", "solid"),
    "echogenicity": ("hyperechogenicity", "isoechogenicity", "hypoechogenicity", "marked-hypoechogenicity"),
    "margins": ("well-defined", "ill-defined", "macrolobulated", "microlobulated", "spiculated"),
    "calcifications": ("non", "macrocalcification", "microcalcification"),
}
TITLES: dict[str, str] = {  # how reports and panels name each field
    "tirads": "TI-RADS category (Kwak-style)",
    "composition": "Composition",
    "echogenicity": "Echogenicity",
    "margins": "Margins",
    "calcifications": "Calcifications",
}
SUSPICIOUS_FROM = "4a"  # TI-RADS categories from this one up are "suspicious"
LABELS_FILE = "labels.csv"
KEY_COLUMN = "id"
MAX_LABELS_BYTES = 32 << 20  # a labels.csv is read whole: 32 MB is about half a million frames (about 0.6 GB in memory)


class LabelsError(ValueError):
    """A labels.csv that cannot be read, or a value outside the vocabulary (names file and line)."""


def is_suspicious(tirads: str) -> bool:
    """TI-RADS 4a, 4b, 4c and 5 are suspicious; 2 and 3 are not."""
    categories = FIELDS["tirads"]
    return categories.index(tirads) >= categories.index(SUSPICIOUS_FROM)


@dataclass(frozen=True)
class Findings:
    """Known findings of one nodule: field -> class name; a missing field is unknown."""

    values: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, value in self.values.items():
            if name not in FIELDS:
                raise LabelsError(f"unknown finding {name!r}; known: {', '.join(FIELDS)}")
            if value not in FIELDS[name]:
                raise LabelsError(f"{name} {value!r} is not one of: {', '.join(FIELDS[name])}")

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def replace(self, name: str, value: str | None) -> "Findings":
        """A copy with ``name`` set to ``value`` (``None``: unknown)."""
        values = {k: v for k, v in self.values.items() if k != name}
        if value is not None:
            values[name] = value
        return Findings(values)

    def with_defaults(self, defaults: "Findings") -> "Findings":
        """A copy whose unknown fields take ``defaults``' values (e.g. the user's findings over the network's)."""
        return Findings({**defaults.values, **self.values})

    @property
    def suspicious(self) -> bool | None:
        tirads = self.values.get("tirads")
        return None if tirads is None else is_suspicious(tirads)

    def __bool__(self) -> bool:
        return bool(self.values)


def _findings_from_row(row: Mapping[str, str], where: str) -> Findings:
    try:
        return Findings({name: row[name].strip() for name in FIELDS if (row.get(name) or "").strip()})
    except LabelsError as exc:
        raise LabelsError(f"{where}: {exc}") from None


def read_labels(path: str | os.PathLike) -> dict[str, Findings]:
    """``labels.csv`` -> {frame key: Findings}; a LabelsError naming the file (and line) for a file that cannot be
    read or parsed (an unbalanced quote, a field over the csv module's limit), no ``id`` or no findings column, a
    column named twice or that looks like a misspelt finding, a row with more or fewer fields than the header, an
    empty or repeated id, or a value outside the vocabulary. (Read through ``io.tables``: cells the project
    neutralised against spreadsheet formulas read back as they were.)"""
    path = Path(path)
    try:
        if (size := path.stat().st_size) > MAX_LABELS_BYTES:
            raise LabelsError(f"{path}: {size / 2**20:.0f} MB; a labels.csv is read whole and may hold at most "
                              f"{MAX_LABELS_BYTES >> 20} MB (about half a million frames)")
        text = path.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelsError(f"{path}: cannot read the labels ({exc})") from exc
    try:
        header, rows = read_table(text, str(path))
    except TableError as exc:
        raise LabelsError(str(exc)) from None
    _check_columns(path, header)
    labels: dict[str, Findings] = {}
    first_line: dict[str, int] = {}
    for row in rows:
        if row.problem:
            raise LabelsError(f"{path}, line {row.line}: {row.problem} (a comma too many or too few?)")
        key = (row.cells.get(KEY_COLUMN) or "").strip()
        if not key:
            raise LabelsError(f"{path}, line {row.line}: empty {KEY_COLUMN}")
        if key in labels:
            raise LabelsError(f"{path}, line {row.line}: {KEY_COLUMN} {key!r} is also on line {first_line[key]}")
        labels[key], first_line[key] = _findings_from_row(row.cells, f"{path}, line {row.line}"), row.line
    return labels


def unattached(labels: Mapping[str, Findings], keys: Iterable[str]) -> list[str]:
    """The ids of ``labels`` that name none of ``keys`` (the frames a command reads), in file order."""
    known = set(keys)
    return [key for key in labels if key not in known]


def unattached_message(path: str | os.PathLike, ids: list[str], keys: Iterable[str], what: str = "frame") -> str | None:
    """One line saying which rows of ``path`` attach to no ``what`` (None when every row attaches), with a hint when
    the ids and the frames differ only in zero-padding (``10`` against ``0010``) or case."""
    if not ids:
        return None
    keys = list(keys)
    shown = ", ".join(repr(key) for key in ids[:5]) + (", ..." if len(ids) > 5 else "")
    message = f"{path}: {len(ids)} of its ids name no {what} ({shown}); their findings are not used"
    padded = {key.lstrip("0") or "0": key for key in keys}
    folded = {key.casefold(): key for key in keys}
    near = next(((i, k) for i in ids if (k := padded.get(i.lstrip("0") or "0") or folded.get(i.casefold()))), None)
    if near is not None:
        message += f" (id {near[0]!r} against the {what} {near[1]!r}: ids must be the file names' stems exactly)"
    elif keys:
        message += f" ({what}s are named like {keys[0]!r})"
    return message


def _check_columns(path: Path, columns: list[str]) -> None:
    """The header must name the id and at least one finding; a column that is nearly a finding's name is a typo."""
    expected = f"expected {KEY_COLUMN},{','.join(FIELDS)},..."
    if KEY_COLUMN not in columns:
        raise LabelsError(f"{path}: no {KEY_COLUMN!r} column; {expected}")
    for column in columns:
        near = difflib.get_close_matches((column or "").strip().lower(), FIELDS, n=1, cutoff=0.8)
        if near and column != near[0]:
            raise LabelsError(f"{path}: column {column!r} is not a finding; did you mean {near[0]!r}?")
    if not set(FIELDS) & set(columns):
        raise LabelsError(f"{path}: no findings column; {expected}")


def labels_text(labels: Mapping[str, Findings], extra: Mapping[str, Mapping[str, str]] | None = None,
                extra_columns: Iterable[str] = ()) -> str:
    """The text of a ``labels.csv``: id, the FIELDS columns, then ``extra_columns`` from ``extra[key]``."""
    columns = [KEY_COLUMN, *FIELDS, *[c for c in extra_columns if c != KEY_COLUMN and c not in FIELDS]]
    out = io.StringIO()
    writer = TableWriter(out, columns)  # ids and the other columns' cells neutralised against spreadsheet formulas
    writer.writeheader()
    for key, findings in labels.items():
        row = {KEY_COLUMN: key, **{name: findings.get(name) or "" for name in FIELDS}}
        row.update({c: (extra or {}).get(key, {}).get(c, "") for c in columns[1 + len(FIELDS):]})
        writer.writerow(row)
    return out.getvalue()


def write_labels(path: str | os.PathLike, labels: Mapping[str, Findings], extra: Mapping[str, Mapping[str, str]] | None = None,
                 extra_columns: Iterable[str] = ()) -> Path:
    """Write ``labels.csv`` atomically (see :func:`labels_text`)."""
    return write_text_atomic(Path(path), labels_text(labels, extra, extra_columns))


@dataclass(frozen=True)
class PredictedFindings:
    """A network's findings for one frame: P(suspicious) and, per field, a probability for each class."""

    suspicious: float  # probability that the TI-RADS category is 4a or above
    probabilities: Mapping[str, Mapping[str, float]]  # field -> class -> probability (classes in FIELDS order)

    def most_likely(self) -> Findings:
        """The most probable class of every predicted field."""
        return Findings({name: max(probs, key=probs.get) for name, probs in self.probabilities.items() if probs})


def merged(user: Findings, predicted: PredictedFindings | None) -> Findings:
    """The findings a score is made from: the user's where set, else the network's most likely class."""
    return user.with_defaults(predicted.most_likely()) if predicted is not None else user
