"""``thyroid-studio [FILE_OR_FOLDER ...]``: start the desktop app on the given frames, or on the bundled
real sample frames when none are given."""
from __future__ import annotations

import argparse
import ctypes.util
import os
import sys
from pathlib import Path

from .. import __version__

SAMPLES = Path(__file__).resolve().parents[2] / "resources" / "samples" / "image"
XCB_CURSOR_FIX = (
    "thyroid-studio: Qt's X11 (xcb) platform plugin needs the system library libxcb-cursor0, which is not "
    "installed: run 'sudo apt install libxcb-cursor0' (Fedora: 'sudo dnf install xcb-util-cursor'), or start "
    "a Wayland session"
)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="thyroid-studio", description="Thyroid Studio desktop app. "
                                     "For research, not diagnosis.")
    parser.add_argument("paths", nargs="*", type=Path, metavar="FILE_OR_FOLDER",
                        help="images, DICOM, video or folders to open (default: the bundled sample frames)")
    parser.add_argument("--version", action="version", version=f"thyroid-studio {__version__}")
    return parser.parse_args(argv)


def open_window(paths: list[Path], settings=None, autosave=None):
    """A shown main window on ``paths`` (the bundled samples when empty), offering crash recovery.
    Needs a QApplication; ``settings`` (QSettings) and ``autosave`` default to the user's."""
    from .main_window import MainWindow
    from .workers import leave_a_core_for_the_gui

    leave_a_core_for_the_gui()
    window = MainWindow(settings, autosave)
    window.show()
    paths = paths or ([SAMPLES] if SAMPLES.is_dir() else [])
    for path in paths:
        if not path.exists():
            window.statusBar().showMessage(f"{path}: no such file or folder", 10000)
    window.open_paths([p for p in paths if p.exists()])
    window.offer_recovery()
    return window


NO_DISPLAY = (
    "thyroid-studio: no display to open the app on (DISPLAY is not set): start it in a desktop session, "
    "or use a subcommand, e.g. thyroid-studio segment --help"
)


def platform_plugin_problem() -> str | None:
    """The one-line fix when Qt's platform plugin will not load, checked before Qt aborts the process.

    Qt >= 6.5 on Linux loads the xcb (X11) plugin, which needs libxcb-cursor0 and an X
    display, whenever QT_QPA_PLATFORM is unset or "xcb" and no Wayland session is running.
    """
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    uses_xcb = platform == "xcb" or (not platform and not os.environ.get("WAYLAND_DISPLAY"))
    if not (sys.platform.startswith("linux") and uses_xcb):
        return None
    if ctypes.util.find_library("xcb-cursor") is None:
        return XCB_CURSOR_FIX
    return None if os.environ.get("DISPLAY") else NO_DISPLAY


def launch_app(argv: list[str] | None = None) -> int:
    """Create the QApplication and the main window on the given inputs; run until the window closes."""
    args = parse_args(sys.argv[1:] if argv is None else list(argv))
    if problem := platform_plugin_problem():
        print(problem, file=sys.stderr)
        return 2  # as every subcommand: nothing done
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("Thyroid Studio")
    app.setOrganizationName("thyroid-studio")
    app.setApplicationVersion(__version__)
    window = open_window(args.paths)  # referenced until the event loop ends
    window.raise_()
    return app.exec()
