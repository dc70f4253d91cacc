"""Where a command may write: every output is planned against every input before anything is written.

One rule for every writer (``segment``, ``prompt``, ``report``, ``evaluate --json``, ``train``, ``finetune``,
``dataset add``, the app's batch and report export). The inputs and the planned outputs are resolved
(links followed, ``os.path.realpath``) and an output file is refused, with one line, when it

- is an input: its name, the file a link among the inputs points to, or another name of the same file;
- lies inside a dataset: a folder the dataset writer keeps (it holds ``records.jsonl`` or ``.dataset.lock``),
  or the image or mask folder of a dataset layout (``X-image/`` beside ``X-mask/``, ``image/`` beside ``mask/``),
  whose files only the dataset writer changes;
- exists and is not a regular file (a folder, a pipe, a socket, a device);
- or has the name of another output of the same run as a case-insensitive disk sees names (:func:`name_key`).

An output folder may not be, lie inside, or hold an input, nor lie inside a dataset. A run holds an OS lock on
its output folder (:func:`folder_lock`) from before its plan until its last file, so two runs never share one.
"""
from __future__ import annotations

import contextlib
import errno
import os
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path

# A folder holding one of these is a dataset the writer keeps (datasets/index.py RECORDS, datasets/writer.py LOCK).
DATASET_FILES = ("records.jsonl", ".dataset.lock")
_IMAGE, _MASK = "image", "mask"  # a layout's folders: image/ + mask/, or X-image/ + X-mask/ (datasets/layouts.py)
_FALLBACK_LOCK = ".thyroid-studio-output.lock"  # where the folder itself cannot be locked (Windows, some NFS)


class OutputError(ValueError):
    """An output that would land on an input, in a dataset, on a folder or device, or in a folder another run holds."""


def resolved(path: str | os.PathLike) -> Path:
    """The absolute path with every link followed (as far as the path exists)."""
    return Path(os.path.realpath(os.path.abspath(path)))


def _located(path: str | os.PathLike) -> Path:
    """Where the name itself lies: its folder resolved, its last part kept (a link stays the link)."""
    path = Path(os.path.abspath(path))
    return resolved(path.parent) / path.name


def _simple_fold(character: str) -> str:
    lower = character.lower()
    return lower if len(lower) == 1 else character  # "ß" stays "ß": no disk folds it to "ss"


def name_key(path: str | os.PathLike) -> str:
    """A path as a case-insensitive, normalisation-insensitive disk compares it (macOS, Windows): NFC, then each
    character's simple lower case. ``STRASSE.png`` and ``straße.png`` differ; ``Scan.png`` and ``scan.png``, and an
    NFC and an NFD ``é``, are one name."""
    return "".join(map(_simple_fold, unicodedata.normalize("NFC", os.fspath(path))))


def _within(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _layout_sibling(folder: Path) -> Path | None:
    """The paired folder of a layout's image or mask folder (``trainval-image`` -> ``trainval-mask``), if it exists."""
    for one, other in ((_IMAGE, _MASK), (_MASK, _IMAGE)):
        if folder.name == one or folder.name.endswith(f"-{one}"):
            sibling = folder.with_name(folder.name[: len(folder.name) - len(one)] + other)
            if sibling.is_dir():
                return sibling
    return None


class OutputPlan:
    """The inputs of one run and the outputs claimed so far; each problem is a phrase for a one-line message."""

    def __init__(self, inputs: Iterable[str | os.PathLike] = ()) -> None:
        self._inputs: dict[str, Path] = {}  # name_key of an input's resolved path and of its own name -> as given
        self._places: list[tuple[Path, Path]] = []  # (an input's resolved path or its own name's place, as given)
        self._identities: dict[tuple[int, int], Path] = {}  # (device, inode) -> as given
        self._folders: list[tuple[Path, Path]] = []  # input folders: (resolved, as given)
        self._claims: dict[str, tuple[str, str]] = {}  # name_key -> (owner, what)
        self._datasets: dict[Path, Path | None] = {}
        self.add_inputs(inputs)

    def add_inputs(self, paths: Iterable[str | os.PathLike]) -> None:
        """Files and folders the run reads (a folder stands for everything below it)."""
        for given in map(Path, paths):
            for place in {resolved(given), _located(given)}:
                self._inputs.setdefault(name_key(place), given)
                self._places.append((place, given))
            try:
                stat = os.stat(given)
            except OSError:
                continue
            if os.path.isdir(given):
                self._folders.append((resolved(given), given))
            else:
                self._identities.setdefault((stat.st_dev, stat.st_ino), given)

    def dataset_of(self, path: str | os.PathLike) -> Path | None:
        """The dataset ``path`` lies in (see the module docstring), or None."""
        folder = resolved(path)
        for candidate in (folder, *folder.parents):
            if candidate not in self._datasets:
                root = candidate if any((candidate / name).exists() for name in DATASET_FILES) else None
                if root is None and _layout_sibling(candidate) is not None:
                    root = candidate.parent
                self._datasets[candidate] = root
            if self._datasets[candidate] is not None:
                return self._datasets[candidate]
        return None

    def _input_at(self, path: str | os.PathLike) -> Path | None:
        for place in (resolved(path), _located(path)):
            if (given := self._inputs.get(name_key(place))) is not None:
                return given
        return None

    def file_problem(self, path: str | os.PathLike) -> str | None:
        """Why ``path`` may not be written (a phrase: "is the input a.png", ...), or None."""
        if (given := self._input_at(path)) is not None:
            return f"is the input {given}" if Path(given) == Path(path) else f"would replace the input {given}"
        real = resolved(path)
        try:
            stat = os.stat(real)
        except OSError:
            stat = None
        if stat is not None:
            if (given := self._identities.get((stat.st_dev, stat.st_ino))) is not None:
                return f"is another name of the input {given}"
            if os.path.isdir(real):
                return "is a folder"
            if not os.path.isfile(real):
                return "is not a regular file (a pipe, socket or device)"
        for folder, given in self._folders:
            if _within(real, folder):
                return f"lies inside the input folder {given}"
        if (dataset := self.dataset_of(real.parent)) is not None:
            return f"lies inside the dataset {dataset} (only the dataset writer changes its files)"
        return None

    def folder_problem(self, folder: str | os.PathLike, dataset: bool = False) -> str | None:
        """Why nothing may be written into ``folder`` (it is, lies inside or holds an input, or lies in a dataset;
        ``dataset``: the folder is the dataset the dataset writer writes, which must not lie in another)."""
        real = resolved(folder)
        for input_folder, given in self._folders:
            if _within(real, input_folder):
                return f"is inside the input folder {given}"
        for place, given in self._places:
            if place == real:
                return f"is the input {given}"
            if _within(place, real):
                if os.path.isdir(place):
                    return f"contains the input folder {given}"
                return f"is the folder of the input {given}" if place.parent == real else f"holds the input {given}"
        if (root := self.dataset_of(real)) is not None and not (dataset and root == real):
            return f"lies inside the dataset {root} (only the dataset writer changes its files)"
        return None

    def claim(self, path: str | os.PathLike, owner: str | os.PathLike, what: str) -> str | None:
        """Claim ``path`` for ``owner``'s ``what`` ("mask", "overlay", ...); the problem if it cannot be written or
        another output of this run has its name (the first claim keeps it; the same claim again is fine)."""
        if (problem := self.file_problem(path)) is not None:
            return problem
        key, claim = name_key(_located(path)), (os.fspath(owner), what)
        if self._claims.setdefault(key, claim) != claim:
            first, first_what = self._claims[key]
            return f"would overwrite the {first_what} of {first}"
        return None

    def check(self, path: str | os.PathLike, what: str) -> Path:
        """``path`` claimed, or an OutputError ``"<what> <path> <problem>"``."""
        if (problem := self.claim(path, what, what)) is not None:
            raise OutputError(f"{what} {path} {problem}")
        return Path(path)

    def check_folder(self, folder: str | os.PathLike, what: str, dataset: bool = False) -> Path:
        """``folder`` if it may be written into, or an OutputError ``"<what> <folder> <problem>"``."""
        if (problem := self.folder_problem(folder, dataset)) is not None:
            raise OutputError(f"{what} {folder} {problem}; choose a folder outside the inputs")
        return Path(folder)


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive OS lock on ``folder`` (which must exist) for the block; an OutputError at once when another
    run holds it. The folder itself is locked (flock on its descriptor), so nothing is left in it; where that is not
    possible a hidden lock file inside it is (filelock, as the dataset writer's)."""
    folder = Path(folder)
    busy = OutputError(f"{folder} is being written by another run; wait for it to finish or choose another folder")
    try:
        import fcntl
    except ImportError:  # Windows
        fcntl = None
    descriptor = None
    if fcntl is not None:
        descriptor = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(descriptor)
            descriptor = None
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise busy from None
    if descriptor is not None:
        try:
            yield
        finally:
            os.close(descriptor)  # closing the descriptor releases the lock
        return
    from filelock import FileLock, Timeout

    lock = FileLock(folder / _FALLBACK_LOCK, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise busy from None
    try:
        yield
    finally:
        lock.release()
