"""Report pages (``engine.reports.page.ReportPage``) drawn into a PDF with Qt's own writer.

QPdfWriter + QPainter, A4 portrait, one page per frame: header, the frame with its contours
and their legend, the tables, and the disclaimer at the foot of every page. Needs a
QGuiApplication for fonts: the app has one; ``thyroid-studio report`` makes an offscreen one
with :func:`ensure_gui_application`. Written to a temporary name and renamed, never partial.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PySide6.QtCore import QMarginsF, QRectF, Qt
from PySide6.QtGui import (QColor, QFont, QFontMetricsF, QGuiApplication, QImage, QPageLayout, QPageSize, QPainter,
                           QPdfWriter, QPen)

from . import __version__
from .engine.io.files import atomic_path
from .engine.reports.page import ReportPage, Table

RESOLUTION = 300  # dots per inch of the page's coordinate system
MARGIN_MM = 15
IMAGE_SHARE = 0.42  # most of the page height the frame may take
FOOT_COLOUR = QColor(170, 0, 0)
RULE_COLOUR = QColor(200, 200, 200)
COLUMN_WIDTHS = {2: (0.45, 0.55), 4: (0.30, 0.42, 0.12, 0.16)}  # fractions of the width, by column count
ROW_PADDING = 0.15  # of a line's height, under each table row


def ensure_gui_application() -> QGuiApplication:
    """The running application, or a new one (offscreen unless QT_QPA_PLATFORM says otherwise).

    A QApplication, not a bare QGuiApplication: Qt allows one application object per process,
    and widgets made later in the same process (the app, tests) need the QApplication kind.
    """
    app = QGuiApplication.instance()
    if app is None:
        from PySide6.QtWidgets import QApplication

        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        app = QApplication(["thyroid-studio-report"])
    return app


def _font(points: float, bold: bool = False) -> QFont:
    font = QFont()
    font.setPointSizeF(points)
    font.setBold(bold)
    return font


def _qimage(rgb: np.ndarray) -> QImage:
    rgb = np.ascontiguousarray(rgb)
    height, width, _ = rgb.shape
    return QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()


class _Page:
    """Draws one ReportPage top-down on the painter, keeping the current height in ``y``."""

    def __init__(self, painter: QPainter, width: float, height: float) -> None:
        self.painter, self.width, self.height, self.y = painter, width, height, 0.0

    def text(self, text: str, font: QFont, x: float = 0.0, width: float | None = None, colour: QColor | None = None,
             wrap: bool = False, advance: bool = True) -> float:
        """Draw ``text`` at (x, y); returns its height (and moves down by it when ``advance``)."""
        painter = self.painter
        painter.setFont(font)
        painter.setPen(colour or QColor(0, 0, 0))
        width = self.width - x if width is None else width
        flags = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop | (Qt.TextFlag.TextWordWrap if wrap else 0)
        bounds = QFontMetricsF(font, painter.device()).boundingRect(QRectF(0, 0, width, self.height), flags, text)
        painter.drawText(QRectF(x, self.y, width, bounds.height()), flags, text)
        if advance:
            self.y += bounds.height()
        return bounds.height()

    def gap(self, lines: float = 0.5) -> None:
        self.y += QFontMetricsF(_font(9), self.painter.device()).height() * lines

    def image(self, rgb: np.ndarray) -> None:
        h, w = rgb.shape[:2]
        scale = min(self.width / w, self.height * IMAGE_SHARE / h)
        target = QRectF((self.width - w * scale) / 2, self.y, w * scale, h * scale)
        self.painter.drawImage(target, _qimage(rgb))
        self.y += target.height()

    def legend(self, entries: Sequence[tuple[str, tuple[int, int, int]]]) -> None:
        font = _font(8)
        metrics = QFontMetricsF(font, self.painter.device())
        x, box = 0.0, metrics.height() * 0.8
        for title, colour in entries:
            self.painter.fillRect(QRectF(x, self.y + metrics.height() * 0.1, box, box), QColor(*colour))
            self.text(title, font, x + box * 1.4, advance=False)
            x += box * 1.4 + metrics.horizontalAdvance(title) + box * 2
        self.y += metrics.height()

    def table(self, table: Table) -> None:
        self.text(table.title, _font(11, bold=True))
        columns = len(table.header)
        widths = [f * self.width for f in COLUMN_WIDTHS.get(columns, (1 / columns,) * columns)]
        starts = np.cumsum([0.0, *widths[:-1]])
        for row, font in [(table.header, _font(8.5, bold=True)), *[(r, _font(8.5)) for r in table.rows]]:
            height = max(self.text(cell, font, x, w, wrap=True, advance=False) for cell, x, w in zip(row, starts, widths))
            self.y += height * (1 + ROW_PADDING)
            self.painter.setPen(QPen(RULE_COLOUR, 1))
            self.painter.drawLine(0, int(self.y), int(self.width), int(self.y))
        if table.note:
            self.text(table.note, _font(7.5), colour=QColor(80, 80, 80), wrap=True)
        self.gap()

    def footer(self, page: ReportPage, number: int, count: int) -> None:
        font = _font(10, bold=True)
        metrics = QFontMetricsF(font, self.painter.device())
        self.y = self.height - 2 * metrics.height()
        self.painter.setPen(QPen(RULE_COLOUR, 2))
        self.painter.drawLine(0, int(self.y), int(self.width), int(self.y))
        self.text(page.disclaimer, font, colour=FOOT_COLOUR, advance=False)
        self.text(f"Page {number} of {count}", _font(8), x=self.width * 0.75, advance=False)
        self.y += metrics.height()
        self.text(f"Thyroid Studio {__version__}", _font(7.5), colour=QColor(80, 80, 80))


def _draw(painter: QPainter, width: float, height: float, page: ReportPage, number: int, count: int) -> None:
    canvas = _Page(painter, width, height)
    canvas.text(f"Thyroid nodule report: {page.title}", _font(15, bold=True))
    canvas.text(page.source, _font(8), wrap=True)
    canvas.text(f"Model: {page.model}", _font(8), wrap=True)
    canvas.text(f"Created: {page.created}", _font(8))
    canvas.gap()
    canvas.image(page.image)
    canvas.gap(0.3)
    canvas.legend(page.legend)
    canvas.gap()
    for table in page.tables:
        canvas.table(table)
    canvas.footer(page, number, count)


def write_report_pdf(path: str | os.PathLike, pages: Sequence[ReportPage], title: str = "Thyroid nodule report") -> Path:
    """Write ``pages`` (one PDF page each) to ``path`` atomically; needs a QGuiApplication."""
    if not pages:
        raise ValueError("a report needs at least one page")
    if QGuiApplication.instance() is None:
        raise RuntimeError("write_report_pdf needs a QGuiApplication (ensure_gui_application())")
    path = Path(path)
    with atomic_path(path) as tmp:
        writer = QPdfWriter(str(tmp))
        writer.setResolution(RESOLUTION)
        writer.setTitle(title)
        writer.setCreator(f"Thyroid Studio {__version__}")
        writer.setPageLayout(QPageLayout(QPageSize(QPageSize.PageSizeId.A4), QPageLayout.Orientation.Portrait,
                                         QMarginsF(MARGIN_MM, MARGIN_MM, MARGIN_MM, MARGIN_MM), QPageLayout.Unit.Millimeter))
        painter = QPainter()
        if not painter.begin(writer):
            raise OSError(f"{path}: cannot write a PDF there")
        try:
            for number, page in enumerate(pages, start=1):
                if number > 1:
                    writer.newPage()
                _draw(painter, writer.width(), writer.height(), page, number, len(pages))
        finally:
            painter.end()
    return path
