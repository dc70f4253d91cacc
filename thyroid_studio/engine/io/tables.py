"""CSV tables the project writes and reads: text cells that cannot execute, and rows that cannot be misread.

Every CSV the project writes (``segmentation.csv``, ``prompt.csv``, ``labels.csv``) goes through
:class:`TableWriter`, which neutralises each cell a spreadsheet would run as a formula (OWASP's rule for CSV
injection: a cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading single
quote; a number such as ``-1.5`` is left as it is). A cell that already starts with a quote gets one more, so
the rule can be undone: :func:`read_table`, which every reader of these files uses, takes the quote off again,
and a file named ``=HYPERLINK(...).png`` or ``-scan.png`` reads back as itself.

:func:`read_table` also reads a cell's carriage returns and line breaks as they are (never as the end of a
row), and says what the csv module passes over in silence: a header naming a column twice is a
:class:`TableError`, and a row with more or fewer fields than the header has a problem of its own.
"""
from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # OWASP: the first characters a spreadsheet takes as a formula
QUOTE = "'"
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


class TableError(ValueError):
    """A table that cannot be read as a whole (the message names it and the line)."""


def _escaped(text: str) -> bool:
    """Whether a written cell needs the quote: it starts like a formula (or with the quote itself), and is no number."""
    return text[:1] in (*FORMULA_STARTS, QUOTE) and _NUMBER.fullmatch(text) is None


def neutralised(cell: object) -> str:
    """The cell as written: ``'=cmd`` for ``=cmd``, ``''x`` for ``'x``; everything else unchanged."""
    text = "" if cell is None else str(cell)
    return QUOTE + text if _escaped(text) else text


def restored(cell: str) -> str:
    """The cell as it was before :func:`neutralised` (a cell that no quote was added to is returned as it is)."""
    return cell[1:] if cell.startswith(QUOTE) and _escaped(cell[1:]) else cell


class TableWriter(csv.DictWriter):
    """``csv.DictWriter`` whose every cell (the header too) is :func:`neutralised`; new columns need nothing more.

    Rows end in ``\r\n`` (RFC 4180), which also makes the csv module quote every cell holding a carriage return
    or a line break (with ``\n`` alone, a cell's ``\r`` would be written bare and end the row when read).
    """

    def __init__(self, handle, fieldnames, **options) -> None:
        super().__init__(handle, fieldnames, **{**options, "lineterminator": "\r\n"})

    def writerow(self, rowdict: Mapping[str, object]):
        return super().writerow({key: neutralised(value) for key, value in rowdict.items()})

    def writerows(self, rowdicts: Iterable[Mapping[str, object]]) -> None:
        for row in rowdicts:
            self.writerow(row)


@dataclass(frozen=True)
class Row:
    """One data row: its line in the file (the header is line 1), its cells by column, and what is wrong with it."""

    line: int
    cells: dict[str, str]
    problem: str | None = None  # e.g. "has 5 fields; the header has 4"


def read_table(text: str, where: str, column: Callable[[str], str] = lambda name: name) -> tuple[list[str], list[Row]]:
    """The header (each name through ``column``, e.g. stripped and lower-cased) and the non-empty rows of a CSV text,
    every cell :func:`restored`. TableError for a text the csv module cannot parse or a header naming a column twice.

    Decode the file's bytes without translating line ends (``data.decode(...)``, not ``Path.read_text``), so that a
    carriage return inside a quoted cell stays one.
    """
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    line = 0  # the last line of the last row read (where a row that cannot be parsed starts after)
    try:
        header = [column(restored(name)) for name in next(reader, [])]
        line = reader.line_num
        seen: dict[str, int] = {}
        for number, name in enumerate(header, start=1):
            if name in seen:
                raise TableError(f"{where}: the header names column {name!r} twice (columns {seen[name]} and {number})")
            seen[name] = number
        rows = []
        for values in reader:
            start, line = line + 1, reader.line_num
            if not any(value.strip() for value in values):
                continue
            problem = None
            if len(values) != len(header):
                problem = f"has {len(values)} fields; the header has {len(header)}"
            rows.append(Row(start, dict(zip(header, map(restored, values))), problem))
    except csv.Error as exc:  # an unbalanced quote, a field larger than the csv module's limit, ...
        raise TableError(f"{where}, line {line + 1}: not a readable CSV ({exc})") from None
    return header, rows
