"""Reading a clip at a steady pace (issue 18: contours ready when the frame appears), offscreen, with the
default models (run by hand, not a test):

    .venv/bin/python bench/bench_reading.py [--steps 20] [--interval 1.0] [--frames 40]
    .venv/bin/python bench/bench_reading.py --compare BASELINE_CHECKOUT [--rounds 2] [--steps 20]

- **key -> both contours**: from a real Right-arrow key press on the canvas (View > Next frame) until the
  TRFE-Net and U-Net contours of the new frame are on the canvas and the viewport has painted them; the
  next key comes ``--interval`` seconds after the one before (one step per second by default);
- **ready at the key**: how many steps found both contours computed before the key was pressed;
- the clip: a ``--frames``-frame MJPEG AVI made from a 560x360 DDTI sample (resources/samples), shifted
  2 px a frame like a slow probe sweep, read by the app's video reader as any clip. The app runs as in
  use: its prompt worker embeds each shown frame for the box tool meanwhile.

``--compare DIR`` runs the measurement in subprocesses on the code at DIR (e.g. ``git archive main | tar -x
-C /tmp/base``) and on this checkout, alternately (``--rounds`` each), and prints both with the machine's
load average (``uptime``) before each run, since other jobs share the CPU.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
HERE = Path(__file__).resolve()


def make_clip(path: Path, frames: int) -> Path:
    import cv2
    import numpy as np

    sample = cv2.imread(str(HERE.parents[1] / "resources" / "samples" / "image" / "1.png"), cv2.IMREAD_GRAYSCALE)
    size = (sample.shape[1], sample.shape[0])
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, size)
    for k in range(frames):
        shifted = cv2.warpAffine(sample, np.float32([[1, 0, 2 * k], [0, 1, 0]]), size)
        writer.write(cv2.cvtColor(shifted, cv2.COLOR_GRAY2BGR))
    writer.release()
    return path


def measure(steps: int, interval: float, frames: int) -> dict:
    """One run on the code importable as ``thyroid_studio``: per-step latencies in ms, and readiness."""
    from PySide6.QtCore import QSettings, Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from thyroid_studio.app.autosave import Autosave
    from thyroid_studio.app.launch import open_window

    app = QApplication.instance() or QApplication([sys.argv[0]])
    with tempfile.TemporaryDirectory() as tmp:
        settings = QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat)
        clip = make_clip(Path(tmp) / "clip.avi", frames)
        window = open_window([clip], settings, Autosave(Path(tmp) / "autosave"))
        window.resize(1400, 860)
        window.activateWindow()
        window.canvas.setFocus()

        def both(row: int) -> bool:
            return window.current == row and {"trfe", "unet"} <= set(window.worklist[row].predictions)

        def pump(until: float, condition=lambda: False) -> bool:
            while time.perf_counter() < until:
                app.processEvents()
                if condition():
                    return True
                time.sleep(0.0005)
            return condition()

        pump(time.perf_counter() + 120, lambda: both(0))  # models loaded, frame 0 segmented
        pump(time.perf_counter() + 3)  # the prompt model loads and embeds, as when a user opens a clip
        latencies, ready = [], 0
        for step in range(1, min(steps, frames - 1) + 1):
            row = window.worklist.row_of(clip, step)
            ready += {"trfe", "unet"} <= set(window.worklist[row].predictions)
            key_at = time.perf_counter()
            QTest.keyClick(window.canvas, Qt.Key.Key_Right)
            if not pump(key_at + 60, lambda: both(row)):
                raise TimeoutError(f"frame {step}: contours not shown within 60 s")
            app.processEvents()  # the viewport's paint of the new contours
            latencies.append((time.perf_counter() - key_at) * 1000)
            pump(key_at + interval)
        window.close()
    return {"latencies_ms": latencies, "ready": ready, "steps": len(latencies)}


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def summary(result: dict) -> str:
    values = sorted(result["latencies_ms"])
    p90 = values[min(len(values) - 1, int(0.9 * len(values)))]
    return (f"{statistics.median(values):.0f} | {p90:.0f} | {values[-1]:.0f} | "
            f"{result['ready']} of {result['steps']}")


def compare(args: argparse.Namespace) -> int:
    runs = []
    for _ in range(args.rounds):
        for name, code in (("baseline", Path(args.compare).resolve()), ("this checkout", HERE.parents[1])):
            load = uptime()
            out = subprocess.run([sys.executable, str(HERE), "--code", str(code), "--json", "--steps", str(args.steps),
                                  "--interval", str(args.interval), "--frames", str(args.frames)],
                                 capture_output=True, text=True, check=True)
            runs.append((name, load, json.loads(out.stdout.strip().splitlines()[-1])))
            print(f"{name}: {load}", file=sys.stderr)
    print("| code | load before (uptime) | key -> both contours, median ms | p90 ms | max ms | ready at the key |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for name, load, result in runs:
        print(f"| {name} | {load.split('load average: ')[-1]} | {summary(result)} |")
    print(f"after: {uptime()}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="key presses timed")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds from one key press to the next")
    parser.add_argument("--frames", type=int, default=40, help="frames in the clip")
    parser.add_argument("--compare", metavar="BASELINE_CHECKOUT", help="also run the code at this folder, alternately")
    parser.add_argument("--rounds", type=int, default=2, help="--compare: runs of each code")
    parser.add_argument("--code", help=argparse.SUPPRESS)  # the checkout to import thyroid_studio from
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.compare:
        return compare(args)
    sys.path.insert(0, str(Path(args.code).resolve() if args.code else HERE.parents[1]))
    result = measure(args.steps, args.interval, args.frames)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"load: {uptime()}")
        print("| key -> both contours, median ms | p90 ms | max ms | ready at the key |\n| ---: | ---: | ---: | ---: |")
        print(f"| {summary(result)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
