"""`thyroid-studio`: the app with no subcommand, or one of the batch subcommands.

Each subcommand lives in its own module of this package and exposes
``add_arguments(parser)`` and ``run(args) -> int`` (the exit status); modules
are imported only when their subcommand runs, so ``--help`` stays fast.
Argument values are checked by the argparse types of ``arguments.py``.

Exit statuses, the same for every subcommand (and the README's table):
errors go to stderr, one line each, as ``thyroid-studio COMMAND: problem``.
"""
from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import __version__

EXIT_OK = 0  # everything asked for was done
EXIT_SOME_FAILED = 1  # done, but some inputs failed (each reported); train/finetune: the run failed partway
EXIT_USAGE = 2  # nothing done: bad arguments, or an input, model or output that stops the command before it starts
EXIT_INTERRUPTED = 130  # Ctrl-C (train: stopped with a resumable state)

SUBCOMMANDS = {
    "segment": "batch-segment image files, folders, DICOM and video",
    "evaluate": "score a model or a folder of masks against ground-truth masks",
    "models": "list the available checkpoints and their cards",
    "train": "train a network on nodule (and gland) datasets",
    "finetune": "fine-tune a checkpoint on corrected labels",
    "report": "write a PDF report per file: contours, measurements, findings, ACR TI-RADS",
    "dataset": "add labelled frames to a dataset, check or repair it, count it",
    "prompt": "one mask per box listed in a CSV (LiteMedSAM box prompts)",
    "pacs": "find studies on a PACS over DICOMweb, pull them as DICOM files, push SEGs back",
}


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (the usage itself is one --help away); exit status 2."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="thyroid-studio",
        description="Thyroid nodule segmentation in ultrasound (TRFE-Net). For research, not diagnosis. "
        "With no subcommand, opens the desktop app: thyroid-studio [FILE_OR_FOLDER ...]",
    )
    parser.add_argument("--version", action="version", version=f"thyroid-studio {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in SUBCOMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(command=name)
        _module(name).add_arguments(sub)
    return parser


def _module(name: str):
    return importlib.import_module(f".{name}", __name__)


def print_error(command: str, message: str) -> None:
    """One line on stderr: ``thyroid-studio COMMAND: message``.

    (Not named ``report``: importing the ``report`` subcommand's module binds that name in this package.)"""
    print(f"thyroid-studio {command}: {message}", file=sys.stderr)


def use_network_threads(threads: int | None = None) -> None:
    """Torch CPU threads for a subcommand that runs a network: ``--threads``, else one core fewer than the
    machine has (``inference.network_threads``), so the reader and writer threads keep a core."""
    import torch

    from ..engine.inference.segmenter import network_threads

    torch.set_num_threads(threads or network_threads())


def bar_progress(bar: Any) -> Callable[[int, int], None]:
    """An engine progress callback ``(done, total)`` that moves a tqdm bar."""

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    return progress


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or (argv[0] not in SUBCOMMANDS and argv[0] not in ("-h", "--help", "--version")):
        if argv and not argv[0].startswith("-") and not Path(argv[0]).exists():
            print(f"thyroid-studio: {argv[0]!r} is neither a subcommand ({', '.join(SUBCOMMANDS)}) nor a file or "
                  "folder to open", file=sys.stderr)
            return EXIT_USAGE
        from ..app.launch import launch_app

        return launch_app(argv)
    args = build_parser().parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):  # file names that are not UTF-8 are printed as their own bytes
        sys.stdout.reconfigure(errors="surrogateescape")
    main_thread = threading.current_thread() is threading.main_thread()
    previous_term = signal.signal(signal.SIGTERM, _interrupt) if main_thread else None  # as cleanly as Ctrl-C
    previous_warning, warnings.showwarning = warnings.showwarning, _one_line_warning(args.command)
    try:
        return _run(args)
    finally:
        warnings.showwarning = previous_warning
        if main_thread:
            signal.signal(signal.SIGTERM, previous_term)


def _interrupt(signum: int, frame: Any) -> None:
    """SIGTERM as a KeyboardInterrupt: the command unwinds (temporary files removed) and exits 130; a StopRequest
    (interruption.py) takes it, as the first Ctrl-C, while work with safe points runs."""
    raise KeyboardInterrupt


def _run(args: argparse.Namespace) -> int:
    """The subcommand, its bad environment variable and its failures of the machine as one line each."""
    try:
        from ..engine.io.frames import max_pixels

        max_pixels()  # a bad $THYROID_STUDIO_MAX_PIXELS stops the command here, not once per file
    except ValueError as exc:
        print_error(args.command, str(exc))
        return EXIT_USAGE
    try:
        return _module(args.command).run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (OSError, MemoryError) as exc:  # the machine, not the input: a full disk, a lost drive, no memory left
        detail = f"{exc.strerror}: {exc.filename}" if isinstance(exc, OSError) and exc.strerror else str(exc)
        print_error(args.command, f"stopped: {type(exc).__name__}: {detail or 'out of memory'}")
        return EXIT_SOME_FAILED
    except Exception as exc:  # OpenCV's allocation failure (cv2.error) is one line too; anything else is a bug
        from ..engine.io.memory import allocation_problem

        if (problem := allocation_problem(exc)) is None:
            raise
        print_error(args.command, f"stopped: {problem}")
        return EXIT_SOME_FAILED


def _one_line_warning(command: str) -> Callable[..., None]:
    """``warnings.showwarning`` for a subcommand: a warning (numpy's RuntimeWarning about a NaN, a library's
    deprecation) is one line, ``thyroid-studio COMMAND: warning: message``, once per message, never a source line."""
    shown: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = " ".join(str(message).split())
        if text not in shown:
            from tqdm import tqdm

            shown.add(text)
            with tqdm.external_write_mode(file=sys.stderr):  # on a line of its own, not inside a progress bar
                print_error(command, f"warning: {text}")

    return show


if __name__ == "__main__":
    sys.exit(main())
