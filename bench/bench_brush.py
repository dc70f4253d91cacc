"""Time per brush dab on a 1280x960 frame: label update plus the view's repaint of the changed rect.

Run by hand (not a test):  python bench/bench_brush.py [--brush 24]   (offscreen by default)
Each dab is a real mouse-move event sent to the canvas viewport, followed by the event
processing that repaints the dirty region; the painted area is recorded to show that
only the dab's rectangle is redrawn. Target: median and p95 <= 16 ms (60 Hz).
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import PySide6  # noqa: E402
from PySide6.QtCore import QEvent, QObject, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QMouseEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from thyroid_studio.app.canvas import Canvas

H, W = 960, 1280
DABS = 1500


class PaintCounter(QObject):
    """Sums the area the viewport repaints."""

    def __init__(self) -> None:
        super().__init__()
        self.area = 0

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint:
            rect = event.region().boundingRect()
            self.area += rect.width() * rect.height()
        return False


def mouse(kind: QEvent.Type, pos: QPointF, buttons: Qt.MouseButton) -> QMouseEvent:
    button = Qt.MouseButton.LeftButton if kind != QEvent.Type.MouseMove else Qt.MouseButton.NoButton
    return QMouseEvent(kind, pos, pos, button, buttons, Qt.KeyboardModifier.NoModifier)


def stroke_path(n: int) -> list[tuple[float, float]]:
    """A long looping stroke across the frame, about 4 image pixels between mouse events."""
    t = np.linspace(0, 2 * np.pi, n)
    return list(zip(640 + 500 * np.sin(3 * t), 480 + 380 * np.sin(2 * t)))


def machine() -> str:
    """CPU model, cores, OS and Python, for the record beside the numbers."""
    cpu = platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brush", type=int, default=24, help="brush diameter in image pixels")
    brush = parser.parse_args().brush
    app = QApplication.instance() or QApplication([])
    rng = np.random.default_rng(0)
    canvas = Canvas()
    canvas.resize(W, H)
    canvas.show()
    canvas.set_image(rng.integers(0, 255, (H, W), dtype=np.uint8))
    canvas.set_tool("brush")
    canvas.brush_size = brush
    app.processEvents()
    viewport = canvas.viewport()
    counter = PaintCounter()
    viewport.installEventFilter(counter)

    points = [QPointF(canvas.mapFromScene(QPointF(x, y))) for x, y in stroke_path(DABS)]
    held = Qt.MouseButton.LeftButton
    QApplication.sendEvent(viewport, mouse(QEvent.Type.MouseButtonPress, points[0], held))
    app.processEvents()
    counter.area = 0
    times = []
    for pos in points[1:]:
        start = time.perf_counter()
        QApplication.sendEvent(viewport, mouse(QEvent.Type.MouseMove, pos, held))
        app.processEvents()
        times.append((time.perf_counter() - start) * 1000)
    QApplication.sendEvent(viewport, mouse(QEvent.Type.MouseButtonRelease, points[-1], Qt.MouseButton.NoButton))
    app.processEvents()

    times.sort()
    p95 = times[int(0.95 * (len(times) - 1))]
    painted = counter.area / len(times) / (viewport.width() * viewport.height())
    print(f"machine: {machine()}")
    print(f"PySide6 {PySide6.__version__}, Qt platform {app.platformName()}")
    print(f"frame {W}x{H}, viewport {viewport.width()}x{viewport.height()}, brush {brush} px, "
          f"{len(times)} dabs, undo steps: {len(canvas.label_model.history)}")
    print(f"per dab: median {statistics.median(times):.2f} ms, p95 {p95:.2f} ms, max {times[-1]:.2f} ms")
    print(f"repainted per dab: {painted:.2%} of the viewport on average")


if __name__ == "__main__":
    main()
