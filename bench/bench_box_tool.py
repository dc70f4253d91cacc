"""Box tool benchmark (run by hand, not a test), offscreen, with the shipped LiteMedSAM (models/litemedsam.pt):

    .venv/bin/python bench/bench_box_tool.py [--frames 8] [--boxes 3] [--with-models]

For each frame (the bundled samples, then DDTI frames from ../shared/data), shown in the real window:
- embedding in the background: from the frame shown (``show_row`` returned) to the prompt worker's
  ``embedded`` signal for it; the first frame also loads the model and is reported apart;
- event-loop lateness while that embedding runs: a 10 ms QTimer's lateness (``bench_app.LatencyProbe``);
- box drag -> proposal on screen, once the embedding is ready: a real mouse drag on the canvas (press,
  move, release) of the ground-truth box + 5 px and shifted copies of it, from the release until the
  dashed proposal is drawn and the viewport repainted; Esc drops it before the next.
Torch threads as the app sets them (``workers.leave_a_core_for_the_gui``: cores - 1). TRFE-Net and
U-Net are switched off unless ``--with-models`` (then they segment each frame as it opens, as in use).
Prints a Markdown table and the load average before and after.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from PySide6.QtCore import QPointF, QSettings, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from thyroid_studio.app.autosave import Autosave
from thyroid_studio.app.launch import SAMPLES, open_window
from thyroid_studio.engine.datasets.layouts import find_mask, read_mask
from thyroid_studio.engine.inference.prompting import box_around
from thyroid_studio.engine.labels.worklist import natural_key

from bench_app import LatencyProbe, wait  # noqa: E402

DDTI = Path(__file__).resolve().parents[2] / "shared" / "data" / "ddti" / "image"
LEFT = Qt.MouseButton.LeftButton
NONE = Qt.KeyboardModifier.NoModifier


def frames(count: int) -> list[Path]:
    found = sorted(SAMPLES.glob("*.png"), key=natural_key)
    if DDTI.is_dir():
        names = {path.name for path in found}  # the samples are DDTI frames: each frame once
        found += [path for path in sorted(DDTI.glob("*.png"), key=natural_key) if path.name not in names]
    return found[:count]


def boxes(path: Path, shape: tuple[int, int], count: int) -> list[tuple[float, float, float, float]]:
    """The ground truth's box + 5 px (the frame's middle third without one), then copies shifted by 8 px."""
    mask = find_mask(path)
    height, width = shape
    x0, y0, x1, y1 = box_around(read_mask(mask), 5) if mask is not None else (width / 3, height / 3,
                                                                              2 * width / 3, 2 * height / 3)
    shifts = [(0, 0), (8, 0), (0, 8), (-8, 0), (0, -8)]
    return [(x0 + dx, y0 + dy, x1 + dx, y1 + dy) for dx, dy in (shifts * count)[:count]]


def median_p90_max(values: list[float]) -> str:
    values = sorted(values)
    if not values:
        return "- | - | -"
    p90 = values[min(len(values) - 1, int(0.9 * len(values)))]
    return f"{statistics.median(values):.0f} | {p90:.0f} | {max(values):.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=8, help="frames shown (samples first, then DDTI)")
    parser.add_argument("--boxes", type=int, default=3, help="boxes dragged on each frame")
    parser.add_argument("--with-models", action="store_true", help="TRFE-Net and U-Net segment each frame too")
    args = parser.parse_args()
    app = QApplication([sys.argv[0]])
    load_before = os.getloadavg()
    paths = frames(args.frames)
    with tempfile.TemporaryDirectory() as tmp:
        settings = QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat)
        window = open_window(paths[:1], settings, Autosave(Path(tmp) / "autosave"))
        window.resize(1400, 860)
        if not args.with_models:
            window.inference.set_models({})
        window.open_paths(paths)
        embedded: set = set()
        window.prompt_worker.embedded.connect(embedded.add)
        window.canvas.set_tool("box")
        tool = window.canvas._tools["box"]
        probe = LatencyProbe()
        first_s, embed_s, late, drag_ms = None, [], [], []
        for row in range(len(paths)):
            window.current = None  # no unsaved edits here: show the frame without asking
            window.show_row(row)
            key = window.worklist[row].key
            tic = time.perf_counter()
            probe.start()
            wait(app, lambda: key in embedded, timeout=300)
            seconds = time.perf_counter() - tic
            lateness = probe.stop()
            if row == 0:
                first_s = seconds
            else:
                embed_s.append(seconds)
                late.extend(lateness)
            viewport = window.canvas.viewport()
            for x0, y0, x1, y1 in boxes(paths[row], window._pixels.shape[:2], args.boxes):
                start, end = (window.canvas.mapFromScene(QPointF(x, y)) for x, y in ((x0, y0), (x1, y1)))
                QTest.mousePress(viewport, LEFT, NONE, start)
                QTest.mouseMove(viewport, (start + end) / 2)
                QTest.mouseMove(viewport, end)
                app.processEvents()
                tic = time.perf_counter()
                QTest.mouseRelease(viewport, LEFT, NONE, end)
                wait(app, lambda: tool.proposal is not None)
                viewport.repaint()
                drag_ms.append((time.perf_counter() - tic) * 1000)
                QTest.keyClick(window.canvas, Qt.Key.Key_Escape)
        window.close()
    load_after = os.getloadavg()
    print(f"frames: {len(paths)} ({', '.join(p.name for p in paths)}); boxes per frame: {args.boxes}; "
          f"torch threads: {torch.get_num_threads()} of {os.cpu_count()} cores; "
          f"TRFE-Net/U-Net: {'on' if args.with_models else 'off'}")
    print(f"load average (1/5/15 min) before: {' '.join(f'{v:.2f}' for v in load_before)}; "
          f"after: {' '.join(f'{v:.2f}' for v in load_after)}")
    print("| measure | median | p90 | max |\n| --- | ---: | ---: | ---: |")
    print(f"| box drag -> proposal on screen, ms ({len(drag_ms)} boxes) | {median_p90_max(drag_ms)} |")
    print(f"| embedding in the background, ms ({len(embed_s)} frames) | "
          f"{median_p90_max([s * 1000 for s in embed_s])} |")
    print(f"| event-loop lateness while embedding, ms ({len(late)} ticks) | {median_p90_max(late)} |")
    print(f"first frame (model load + embedding): {first_s * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
