"""Masks from a table of boxes: the loop behind ``thyroid-studio prompt`` (scripted annotation, testing).

The table is a CSV with a header naming at least ``file, x0, y0, x1, y1`` (frame pixels,
``x1``/``y1`` exclusive, as in the ``segment`` command's CSV, which is therefore a valid
table) and optionally ``frame`` (0-based, for multi-frame files; empty or absent means
0). Other columns are ignored; relative paths are relative to the current folder.

Each row gives one 0/255 PNG in the output folder named after its frame
(``Frame.name``: ``<stem>``, or ``<stem>_f0003`` for frame 3 of a multi-frame file). A
row whose name is already taken in this run (a second box on a frame, or two files
with one stem) gets ``<name>_box2``, then ``_box3``, ...: no row overwrites another's
mask. ``prompt.csv`` maps every row to its mask. A bad row (a row with more or fewer
fields than the header among them) is reported (its CSV line number and the problem) and
the rest go on; consecutive rows on one frame share its embedding. The table is read and
``prompt.csv`` written through ``io.tables`` (cells neutralised against spreadsheet formulas
and read back as they were), and every mask through the run's ``io.outputs.OutputPlan``
(never onto an input, into a dataset or onto a folder), in an output folder it locks.
"""
from __future__ import annotations

import io
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..io.files import TEXT_ERRORS, write_mask_png, write_text_atomic
from ..io.frames import Frame, FrameReadError, read_frame
from ..io.outputs import OutputPlan, folder_lock, name_key
from ..io.tables import Row, TableError, TableWriter, read_table
from .batch import check_output_dir
from .prompting import BoxXYXY, PromptSegmenter

BOX_COLUMNS = ("file", "x0", "y0", "x1", "y1")
FRAME_COLUMN = "frame"
SUMMARY_NAME = "prompt.csv"
SUMMARY_COLUMNS = ("line", "file", "frame", "x0", "y0", "x1", "y1", "area_px", "mask")
MAX_TABLE_BYTES = 16 << 20  # the table is read whole: 16 MB is about 300 000 boxes


class BoxTableError(ValueError):
    """The boxes CSV as a whole cannot be used (missing, unreadable, required columns absent)."""


@dataclass(frozen=True)
class BoxRow:
    line: int  # line number in the CSV (the header is line 1)
    file: Path
    frame: int
    box: BoxXYXY


@dataclass
class PromptReport:
    rows: int = 0
    masks: int = 0
    failures: list[tuple[int, str]] = field(default_factory=list)  # (CSV line, one-line message)
    csv_path: Path | None = None
    seconds: float = 0.0
    cancelled: bool = False  # should_stop() ended it early; prompt.csv lists the rows done

    @property
    def ok(self) -> bool:
        return not self.failures


def read_box_table(path: str | os.PathLike) -> list[Row]:
    """The data rows (column names stripped and lower-cased; a row's ``problem`` says when its field count differs
    from the header's); BoxTableError for the whole file (missing, over MAX_TABLE_BYTES, not parseable as CSV, a
    column named twice, required columns absent). UTF-8, but bytes that are not (a file name in another encoding,
    as segment writes it) are kept, so such a row names its file."""
    path = Path(path)
    try:
        if (size := path.stat().st_size) > MAX_TABLE_BYTES:
            raise BoxTableError(f"{path}: {size / 2**20:.0f} MB; a boxes table is read whole and may hold at most "
                                f"{MAX_TABLE_BYTES >> 20} MB (about 300 000 boxes)")
        text = path.read_bytes().decode("utf-8-sig", TEXT_ERRORS)  # as segment wrote a non-UTF-8 file name
    except FileNotFoundError:
        raise BoxTableError(f"{path}: no such file") from None
    except OSError as exc:
        raise BoxTableError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    try:
        header, rows = read_table(text, str(path), column=lambda name: name.strip().lower())
    except TableError as exc:
        raise BoxTableError(str(exc)) from None
    missing = [name for name in BOX_COLUMNS if name not in header]
    if missing:
        raise BoxTableError(f"{path}: no column {', '.join(missing)} in the header (needs {', '.join(BOX_COLUMNS)}"
                            f"[, {FRAME_COLUMN}])")
    return rows


def parse_row(line: int, record: dict[str, str]) -> BoxRow:
    """One record -> BoxRow; a ValueError names the column and the value that is wrong."""
    file = (record.get("file") or "").strip()
    if not file:
        raise ValueError("no file given")
    numbers = []
    for name in BOX_COLUMNS[1:]:
        text = (record.get(name) or "").strip()
        try:
            numbers.append(float(text))
        except ValueError:
            raise ValueError(f"{name} {text!r} is not a number") from None
        if not math.isfinite(numbers[-1]):
            raise ValueError(f"{name} {text!r} is not a finite number")
    frame_text = (record.get(FRAME_COLUMN) or "").strip() or "0"
    try:
        frame = int(frame_text)
    except ValueError:
        raise ValueError(f"frame {frame_text!r} is not a whole number") from None
    return BoxRow(line, Path(file), frame, tuple(numbers))


class _UniqueNames:
    """``name``, then ``name_box2``, ``name_box3``, ... (compared as case-insensitive disks compare names: name_key)."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def __call__(self, name: str) -> str:
        candidate, k = name, 1
        while name_key(candidate) in self.used:
            k += 1
            candidate = f"{name}_box{k}"
        self.used.add(name_key(candidate))
        return candidate


def prompt_boxes(
    boxes_csv: str | os.PathLike,
    out_dir: str | os.PathLike,
    prompter: PromptSegmenter,
    progress: Callable[[int, int], None] | None = None,
    on_failure: Callable[[int, str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> PromptReport:
    """Segment every row of ``boxes_csv`` into ``out_dir`` (see the module docstring).

    BoxTableError for an unusable table and OutputError (a ValueError) when ``out_dir`` is, lies inside or holds
    an input (the table too), lies in a dataset, or is held by another run, all before anything is written.
    ``progress(done, total)`` in rows;
    ``on_failure(line, message)`` for each bad row; ``should_stop()`` is polled before each row
    (the rows done keep their masks and their lines in prompt.csv).
    """
    started = time.perf_counter()
    table = read_box_table(boxes_csv)
    named = sorted({Path(file) for row in table if (file := (row.cells.get("file") or "").strip())})
    plan = check_output_dir([Path(boxes_csv), *named], out_dir)
    out_dir = Path(out_dir)
    plan.check(out_dir / SUMMARY_NAME, "the summary")
    out_dir.mkdir(parents=True, exist_ok=True)
    with folder_lock(out_dir):
        return _prompt(table, out_dir, plan, prompter, progress, on_failure, should_stop, started)


def _prompt(table: list[Row], out_dir: Path, plan: OutputPlan, prompter: PromptSegmenter,
            progress: Callable[[int, int], None] | None, on_failure: Callable[[int, str], None] | None,
            should_stop: Callable[[], bool] | None, started: float) -> PromptReport:
    """The rows of :func:`prompt_boxes`, in a checked and locked output folder."""
    report = PromptReport(rows=len(table), csv_path=out_dir / SUMMARY_NAME)
    unique = _UniqueNames()
    summary = io.StringIO()
    writer = TableWriter(summary, fieldnames=SUMMARY_COLUMNS)
    writer.writeheader()
    frame: Frame | None = None
    for done, (line, record, malformed) in enumerate(((r.line, r.cells, r.problem) for r in table), start=1):
        if should_stop and should_stop():
            report.cancelled = True
            break
        try:
            if malformed:
                raise ValueError(malformed)
            row = parse_row(line, record)
            if frame is None or (frame.source, frame.index) != (row.file, row.frame):
                frame = read_frame(row.file, row.frame)
            mask = prompter.segment(prompter.embed(frame.pixels), row.box)
            name = unique(frame.name)
            if (problem := plan.claim(out_dir / f"{name}.png", row.file, "mask")) is not None:
                raise ValueError(f"its mask {name}.png {problem}")
            write_mask_png(out_dir / f"{name}.png", mask)
        except (ValueError, OSError) as exc:  # FrameReadError is a ValueError
            file = (record.get("file") or "").strip()
            message = f"{file}: {exc}" if file and not isinstance(exc, FrameReadError) else str(exc)
            report.failures.append((line, message))
            if on_failure:
                on_failure(line, message)
        else:
            report.masks += 1
            x0, y0, x1, y1 = row.box
            writer.writerow({"line": line, "file": str(row.file), "frame": row.frame, "x0": f"{x0:g}", "y0": f"{y0:g}",
                             "x1": f"{x1:g}", "y1": f"{y1:g}", "area_px": int(mask.sum()), "mask": f"{name}.png"})
        if progress:
            progress(done, len(table))
    write_text_atomic(report.csv_path, summary.getvalue())
    report.seconds = time.perf_counter() - started
    return report
