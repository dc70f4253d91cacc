"""Peak memory of `thyroid-studio segment` on one worst-case frame, and the bytes per pixel it takes.

The worst case for memory: an RGB frame (3 bytes per pixel) whose ultrasound region is all of it (so the
probabilities are restored over the whole frame), a model with a gland head, ``--overlay --gland``, and a
threshold that makes the nodule the whole frame (measuring a frame-sized component). Each size runs in a fresh
process; its peak resident memory (VmHWM) is read after the command, and the process's memory before any frame
(the libraries and the model) is subtracted to give bytes per pixel. engine/io/memory.py's BYTES_PER_PIXEL and the
default pixel cap come from these numbers.

    .venv/bin/python bench/memory_per_pixel.py [--megapixels 10 30 50] [--model models/trfe-a-lite0.pt]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
PEAK = "[int(line.split()[1]) * 1024 for line in open('/proc/self/status') if line.startswith('VmHWM')][0]"
SCRIPT = f"""
import sys
from thyroid_studio.cli import main
from thyroid_studio.engine.models.checkpoint import load_checkpoint
load_checkpoint(sys.argv[1])  # the libraries and the model, before any frame
before = {PEAK}
code = main(["segment", sys.argv[2], "--out", sys.argv[3], "--model", sys.argv[1], "--device", "cpu", "--overlay",
             "--gland", "--threshold", "0.01"])
print(code, before, {PEAK})
"""


def worst_frame(path: Path, side: int) -> None:
    pixels = np.zeros((side, side, 3), np.uint8)
    pixels[..., 0], pixels[..., 1], pixels[..., 2] = 120, 90, (np.arange(side) % 200)[None, :] + 30
    cv2.imwrite(str(path), pixels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megapixels", type=float, nargs="+", default=[10, 30, 50])
    parser.add_argument("--model", default=str(REPO / "models" / "trfe-a-lite0.pt"))
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "THYROID_STUDIO_MAX_PIXELS": str(10**9)}
    print("| megapixels | exit | before a frame (MB) | peak (MB) | bytes per pixel |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for megapixels in args.megapixels:
        side = int((megapixels * 1e6) ** 0.5)
        with tempfile.TemporaryDirectory() as folder:
            frame = Path(folder) / "worst.png"
            worst_frame(frame, side)
            done = subprocess.run([sys.executable, "-c", SCRIPT, args.model, str(frame), str(Path(folder) / "out")],
                                  capture_output=True, text=True, env=env)
            code, before, peak = map(int, done.stdout.split()[-3:])
        print(f"| {side * side / 1e6:.1f} | {code} | {before / 1e6:.0f} | {peak / 1e6:.0f} | "
              f"{(peak - before) / (side * side):.1f} |")


if __name__ == "__main__":
    main()
