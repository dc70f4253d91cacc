"""Make docs/screenshot.png: the app started offscreen on the bundled sample frames with the default
models, once the TRFE-Net and U-Net contours are shown.

    .venv/bin/python tools/make_screenshot.py [--out docs/screenshot.png] [--frame 1.png]
                                              [--trfe CHECKPOINT] [--unet CHECKPOINT]

Uses clean settings and an empty autosave folder, so no question dialog can block it. Prints which
checkpoints drew the contours.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from thyroid_studio.app.autosave import Autosave  # noqa: E402
from thyroid_studio.app.dialogs.models_dialog import chosen_models  # noqa: E402
from thyroid_studio.app.launch import SAMPLES, open_window  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshot.png")
    parser.add_argument("--frame", default="1.png", help="sample frame to show (file name in resources/samples/image)")
    parser.add_argument("--size", default="1400x860", help="window size WxH")
    parser.add_argument("--trfe", type=Path, help="checkpoint for the red contour (default: the shipped default)")
    parser.add_argument("--unet", type=Path, help="checkpoint for the yellow contour (default: the shipped default)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the contours")
    args = parser.parse_args()

    app = QApplication([sys.argv[0]])
    with tempfile.TemporaryDirectory() as tmp:
        settings = QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat)
        for role in ("trfe", "unet"):
            if getattr(args, role) is not None:
                settings.setValue(f"models/{role}", str(getattr(args, role).resolve()))
        models = chosen_models(settings)
        print("models:", {role: str(path) if path else None for role, path in models.items()})
        if not all(models.values()):
            print("error: no checkpoint for every contour colour (models/defaults.json missing?)", file=sys.stderr)
            return 1
        window = open_window([SAMPLES], settings, Autosave(Path(tmp) / "autosave"))
        width, height = (int(v) for v in args.size.split("x"))
        window.resize(width, height)
        row = window.worklist.row_of(SAMPLES / args.frame)
        if row is None:
            print(f"error: no sample {args.frame} in {SAMPLES}", file=sys.stderr)
            return 1
        window.show_row(row)
        deadline = time.monotonic() + args.timeout
        while len(window.worklist[row].predictions) < 2 and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.02)
        entry = window.worklist[row]
        if len(entry.predictions) < 2:
            print(f"error: no contours after {args.timeout:.0f} s ({entry.error})", file=sys.stderr)
            return 1
        for _ in range(20):  # let panels (measurements are throttled) and the view settle
            app.processEvents()
            time.sleep(0.02)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        if not window.grab().save(str(args.out)):
            print(f"error: could not write {args.out}", file=sys.stderr)
            return 1
        print(f"wrote {args.out}; models {entry.models}; Dice vs ground truth {window.worklist.dice(row)}")
        window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
