"""Writing files so that a failure never leaves a partial one: temporary name, then rename."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, _FILE_MODE)  # mkstemp makes 0600; give the file the permissions a plain open() would
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_image_atomic(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Encode ``image`` (gray, or RGB channel order) by the path's extension and write it atomically."""
    path = Path(path)
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(path.suffix or ".png", image)
    if not ok:
        raise OSError(f"{path}: could not encode a {image.shape} {image.dtype} image")
    return write_bytes_atomic(path, encoded.tobytes())


def write_mask_png(path: str | os.PathLike, mask: np.ndarray) -> Path:
    """Write a binary mask as a lossless PNG holding exactly 0 and 255."""
    return write_image_atomic(Path(path).with_suffix(".png"), np.where(mask > 0, 255, 0).astype(np.uint8))


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
