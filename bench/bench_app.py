"""App responsiveness benchmark (run by hand, not a test), offscreen, with the default models:

    .venv/bin/python bench/bench_app.py [--rounds 5] [--batch-copies 20]

- open -> contours: from ``show_row`` of a 560x360 DDTI sample until both the TRFE-Net and the
  U-Net contours are on the canvas (frame read, worker hand-off, two models, overlays drawn);
- event-loop latency: a 10 ms QTimer runs throughout; its lateness (actual minus 10 ms) is
  reported while inference runs and while the Batch dialog segments copies of the samples.
Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtCore import QElapsedTimer, QSettings, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from thyroid_studio.app.autosave import Autosave
from thyroid_studio.app.dialogs.models_dialog import chosen_models
from thyroid_studio.app.launch import SAMPLES, open_window

TICK_MS = 10


class LatencyProbe:
    """Lateness of a 10 ms timer: how long the GUI thread could not run its event loop."""

    def __init__(self) -> None:
        self.clock = QElapsedTimer()
        self.late: list[float] = []
        self.timer = QTimer(interval=TICK_MS, timeout=self._tick)

    def start(self) -> None:
        self.late.clear()
        self.clock.start()
        self.timer.start()

    def stop(self) -> list[float]:
        self.timer.stop()
        return list(self.late)

    def _tick(self) -> None:
        self.late.append(max(0.0, self.clock.restart() - TICK_MS))


def wait(app: QApplication, condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        app.processEvents()
        time.sleep(0.001)


def summary(values: list[float]) -> str:
    values = sorted(values)
    p = values[min(len(values) - 1, int(0.99 * len(values)))] if values else float("nan")
    return f"{statistics.median(values):.1f} | {p:.1f} | {max(values):.1f}" if values else "- | - | -"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="times each sample is opened afresh")
    parser.add_argument("--batch-copies", type=int, default=20, help="copies of each sample in the batch folder")
    args = parser.parse_args()
    app = QApplication([sys.argv[0]])
    with tempfile.TemporaryDirectory() as tmp:
        settings = QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat)
        models = chosen_models(settings)
        print("models:", {role: str(path) for role, path in models.items()})
        window = open_window([SAMPLES], settings, Autosave(Path(tmp) / "autosave"))
        window.resize(1400, 860)
        wait(app, lambda: len(window.worklist[window.current].predictions) == 2)  # warm-up: models loaded
        probe = LatencyProbe()
        open_ms: list[float] = []
        probe.start()
        for _ in range(args.rounds):
            for row in range(len(window.worklist)):
                window.worklist.clear_predictions()
                window.current = None
                tic = time.perf_counter()
                window.show_row(row)
                wait(app, lambda: len(window.worklist[row].predictions) == 2)
                app.processEvents()
                open_ms.append((time.perf_counter() - tic) * 1000)
        inference_late = probe.stop()

        folder = Path(tmp) / "batch"
        folder.mkdir()
        for i in range(args.batch_copies):
            for image in SAMPLES.glob("*.png"):
                shutil.copy(image, folder / f"{i}_{image.name}")
        probe.start()
        dialog = window.run_batch([folder], Path(tmp) / "out", models["trfe"])
        wait(app, lambda: dialog.report is not None, timeout=600)
        batch_late = probe.stop()
        print("| measure | median ms | p99 ms | max ms |\n| --- | ---: | ---: | ---: |")
        print(f"| open -> both contours ({len(open_ms)} opens) | {summary(open_ms)} |")
        print(f"| event-loop lateness during inference | {summary(inference_late)} |")
        print(f"| event-loop lateness during batch ({dialog.report.frames} frames, "
              f"{dialog.report.frames_per_second:.1f} frames/s) | {summary(batch_late)} |")
        window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
