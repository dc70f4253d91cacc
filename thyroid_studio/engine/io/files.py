"""Writing files so that a failure never leaves a partial one: temporary name, then rename.

``durable=True`` also survives a power loss: the file's data is flushed to the disk (fsync)
before the rename, and the folder after it, so the new name never points at missing data.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np


class FileProblem(ValueError):
    """A file that cannot serve as asked; the message names the file and the problem (readers and the SEG
    reader and writer raise subclasses of it)."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        super().__init__(f"{Path(path).name}: {problem}")
        self.path, self.problem = Path(path), problem


def first_line(exc: Exception) -> str:
    """The first line of a third-party exception's message (pydicom's can carry a whole traceback)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()


TEXT_ERRORS = "surrogateescape"  # text files that name files (CSV, summaries) keep a non-UTF-8 name's bytes
TEMPORARY_MARK = ".tmp"  # temporary files are named ".<stem>.<random>.tmp<suffix>"
NAME_MAX_BYTES = 255  # the longest file name most file systems take (ext4, APFS, NTFS in UTF-16 units)
_TEMPORARY_EXTRA = len(f"..{'x' * 8}{TEMPORARY_MARK}")  # the dots, mkstemp's 8 random characters and the mark


def _temporary_stem(path: Path) -> str:
    """The stem that goes into a temporary name: cut (at a character) so the temporary name fits in NAME_MAX_BYTES
    whenever the final name does (a 250-byte name would otherwise fail only because its temporary is longer)."""
    budget = NAME_MAX_BYTES - _TEMPORARY_EXTRA - len(os.fsencode(path.suffix))
    encoded = os.fsencode(path.stem)
    if len(encoded) <= budget:
        return path.stem
    cut = encoded[: max(budget, 1)]
    while cut and (cut[-1] & 0xC0) == 0x80:  # never in the middle of a UTF-8 character
        cut = cut[:-1]
    if cut and cut[-1] >= 0xC0:
        cut = cut[:-1]
    return os.fsdecode(cut)


def is_temporary(path: str | os.PathLike) -> bool:
    """True for a temporary file that :func:`atomic_path` names (left behind only by a killed process)."""
    name = Path(path).name
    return name.startswith(".") and TEMPORARY_MARK in name


def fsync(path: str | os.PathLike) -> None:
    """Flush a file's data, or a folder's entries (creations, renames, deletions), to the disk."""
    fd = os.open(path, os.O_RDONLY)  # POSIX: a file or folder opened read-only can be fsync'd
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def append_durable(path: str | os.PathLike, data: bytes) -> None:
    """Append ``data`` to a file (created if missing) and flush it to the disk before returning.

    A crash can leave only a prefix of ``data`` at the end of the file; readers of
    line-based logs treat a last line without its newline as never written.
    """
    path = Path(path)
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, _FILE_MODE)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        fsync(path.parent)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, durable: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{_temporary_stem(path)}.", suffix=f"{TEMPORARY_MARK}{path.suffix}",
                               dir=path.parent)
    os.close(fd)
    os.chmod(tmp, _FILE_MODE)  # mkstemp makes 0600; give the file the permissions a plain open() would
    try:
        yield Path(tmp)
        if durable:
            fsync(tmp)
        os.replace(tmp, path)
        if durable:
            fsync(path.parent)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_bytes_atomic(path: str | os.PathLike, data: bytes, durable: bool = False) -> Path:
    with atomic_path(path, durable) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str, durable: bool = False) -> Path:
    """UTF-8; a file name that is not UTF-8 (Python holds its bytes as surrogates) is written as its own bytes."""
    return write_bytes_atomic(path, text.encode("utf-8", TEXT_ERRORS), durable)


def encode_image(image: np.ndarray, suffix: str = ".png", in_place: bool = False) -> bytes:
    """The file bytes of ``image`` (gray, or RGB channel order) in the format of ``suffix``; ``in_place``: an RGB
    ``image`` the caller no longer needs is turned into OpenCV's BGR where it lies (no frame-sized copy)."""
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR, dst=image if in_place and image.flags.c_contiguous else None)
    ok, encoded = cv2.imencode(suffix or ".png", image)
    if not ok:
        raise OSError(f"could not encode a {image.shape} {image.dtype} image as {suffix}")
    return encoded.tobytes()


def mask_png(mask: np.ndarray) -> bytes:
    """A binary mask as the bytes of a lossless PNG holding exactly 0 and 255."""
    binary = np.asarray(mask) != 0
    return encode_image(np.multiply(binary.view(np.uint8), 255, dtype=np.uint8))  # no int64 temporary


def write_image_atomic(path: str | os.PathLike, image: np.ndarray, in_place: bool = False) -> Path:
    """Encode ``image`` (gray, or RGB channel order) by the path's extension and write it atomically
    (``in_place``: see :func:`encode_image`)."""
    path = Path(path)
    try:
        data = encode_image(image, path.suffix, in_place)
    except OSError as exc:
        raise OSError(f"{path}: {exc}") from exc
    return write_bytes_atomic(path, data)


def write_mask_png(path: str | os.PathLike, mask: np.ndarray) -> Path:
    """Write a binary mask as a lossless PNG holding exactly 0 and 255."""
    return write_bytes_atomic(Path(path).with_suffix(".png"), mask_png(mask))


def output_folder_problem(folder: str | os.PathLike) -> str | None:
    """Why ``folder`` could not be created or written into (it is a file, lies under a file, or it or its
    nearest existing ancestor is read-only), or None; checked before any work starts, nothing is created."""
    folder = Path(folder).absolute()
    existing = folder
    while not existing.exists():
        if existing.is_symlink():
            return f"cannot be created: {existing} is a dangling link"
        existing = existing.parent
    if not existing.is_dir():
        return "is a file, not a folder" if existing == folder else f"cannot be created under the file {existing}"
    if not os.access(existing, os.W_OK | os.X_OK):
        return "is read-only" if existing == folder else f"cannot be created: {existing} is read-only"
    return None
