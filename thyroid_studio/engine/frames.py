"""Frames from files: still images, DICOM (single and multi-frame) and video; finding input files.

Every reader hands out :class:`Frame` objects with uint8 pixels, (H, W) gray or
(H, W, 3) RGB, so the rest of the engine never sees bit depths, channel orders or
photometric interpretations. Colour pixels whose three channels are equal become
(H, W) gray, since ultrasound frames are often saved as RGB gray. Every failure is
a :class:`FrameReadError` whose one-line message names the file and the problem,
ready to show to a user.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut, get_decoder, iter_pixels
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from .preprocessing import to_gray

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".jpe", ".bmp", ".dib", ".tif", ".tiff"}
DICOM_EXTENSIONS = {".dcm", ".dicom", ".dic"}
VIDEO_EXTENSIONS = {".mp4", ".m4v", ".avi", ".mov", ".mkv", ".wmv", ".mpg", ".mpeg", ".webm"}

_DICOM_MAGIC_OFFSET = 128
_CENTIMETRES = 3  # PhysicalUnitsX/YDirection code for cm in SequenceOfUltrasoundRegions
_PHOTOMETRICS = {"MONOCHROME1", "MONOCHROME2", "RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT"}


@dataclass(frozen=True, eq=False)
class Frame:
    """One 2-D frame and where it came from. Equality is identity: comparing pixel arrays is the caller's job."""

    pixels: np.ndarray  # uint8, (H, W) gray or (H, W, 3) RGB
    source: Path  # the file it came from
    index: int = 0  # frame number inside a multi-frame file
    count: int = 1  # frames in the source
    spacing_mm: tuple[float, float] | None = None  # (row, column) millimetres per pixel

    @property
    def name(self) -> str:
        """``"<stem>"`` for single-frame sources, ``"<stem>_f0003"`` (0-based index) otherwise."""
        stem = Path(self.source).stem
        return stem if self.count == 1 else f"{stem}_f{self.index:04d}"

    def gray(self) -> np.ndarray:
        """(H, W) uint8."""
        return to_gray(self.pixels)


class FrameReadError(ValueError):
    """A file could not be read as frames; the message names the file and the problem."""


def _error(path: Path, problem: str) -> FrameReadError:
    return FrameReadError(f"{path.name}: {problem}")


def _reason(exc: Exception) -> str:
    """The first line of a third-party exception's message (pydicom's can carry a whole traceback)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


# ---------------------------------------------------------------- pixels


def _to_uint8(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels: uint8 passes through; any other dtype (16-bit, signed, float) is rescaled linearly.

    The rescale maps the data's own min..max (not the dtype's full range) onto 0..255,
    because 12-bit scanner data in 16-bit containers would otherwise come out nearly
    black. A constant image becomes all zeros.
    """
    if pixels.dtype == np.uint8:
        return pixels
    low, high = float(pixels.min()), float(pixels.max())
    if high <= low:
        return np.zeros(pixels.shape, np.uint8)
    scaled = (pixels.astype(np.float32) - low) * np.float32(255.0 / (high - low))
    return np.rint(scaled).astype(np.uint8)


def _gray_if_equal_channels(pixels: np.ndarray) -> np.ndarray:
    """(H, W) when the three channels are identical (RGB-saved gray frames), else unchanged."""
    if pixels.ndim == 3 and np.array_equal(pixels[..., 0], pixels[..., 1]) and np.array_equal(
        pixels[..., 1], pixels[..., 2]
    ):
        return np.ascontiguousarray(pixels[..., 0])
    return np.ascontiguousarray(pixels)


def _from_opencv(pixels: np.ndarray) -> np.ndarray:
    """OpenCV's gray / gray+alpha / BGR / BGRA of any bit depth -> uint8 gray or RGB."""
    if pixels.ndim == 3 and pixels.shape[2] <= 2:
        pixels = pixels[..., 0]  # gray, or gray + alpha
    elif pixels.ndim == 3:
        pixels = pixels[..., 2::-1]  # BGR(A) -> RGB, alpha dropped
    return _gray_if_equal_channels(_to_uint8(pixels))


# ---------------------------------------------------------------- file types


def is_dicom(path: str | os.PathLike) -> bool:
    """True for a DICOM extension, or, for other unknown names (no or UID-like suffix), the "DICM" magic at byte 128."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in DICOM_EXTENSIONS:
        return True
    if suffix in IMAGE_EXTENSIONS or suffix in VIDEO_EXTENSIONS:
        return False
    try:
        with open(path, "rb") as f:
            f.seek(_DICOM_MAGIC_OFFSET)
            return f.read(4) == b"DICM"
    except OSError:
        return False


def _is_supported(path: Path) -> bool:
    suffix = path.suffix.lower()
    return suffix in IMAGE_EXTENSIONS or suffix in VIDEO_EXTENSIONS or is_dicom(path)


def _kind(path: Path) -> str:
    """"image", "dicom" or "video"; a FrameReadError for a missing file, a folder or an unknown type."""
    if not path.exists():
        raise _error(path, "file not found")
    if path.is_dir():
        raise _error(path, "is a folder, not a file")
    suffix = path.suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        return "image"
    if suffix in VIDEO_EXTENSIONS:
        return "video"
    if is_dicom(path):
        return "dicom"
    raise _error(path, f"unsupported file type {suffix or '(no extension)'!r}")


def _check_index(path: Path, index: int, count: int) -> None:
    if not 0 <= index < count:
        raise _error(path, f"frame {index} is out of range (the file has {count} frame{'s' * (count != 1)})")


# ---------------------------------------------------------------- still images


def _read_image(path: Path) -> np.ndarray:
    """Decode from bytes (np.fromfile + imdecode) so non-ASCII paths work; multi-page TIFF: first page only."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise _error(path, f"cannot be read ({exc.strerror or _reason(exc)})") from exc
    if data.size == 0:
        raise _error(path, "empty file")
    try:
        pixels = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise _error(path, "not a readable image (corrupt or truncated file)") from exc
    if pixels is None:
        raise _error(path, "not a readable image (corrupt or truncated file)")
    if pixels.size == 0:
        raise _error(path, "image has zero size")
    return _from_opencv(pixels)


# ---------------------------------------------------------------- DICOM


def _dicom_header(path: Path) -> Dataset:
    """Everything but the pixel data, checked to describe pixels this build can decode."""
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    except Exception as exc:  # pydicom raises many types for damaged files
        raise _error(path, f"not a readable DICOM file ({_reason(exc)})") from exc
    if "Rows" not in ds or "Columns" not in ds or "BitsAllocated" not in ds:
        raise _error(path, "not a DICOM image (no pixel data found)")
    if int(ds.Rows) == 0 or int(ds.Columns) == 0:
        raise _error(path, "DICOM image has zero size")
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if photometric not in _PHOTOMETRICS:
        raise _error(path, f"DICOM photometric interpretation {photometric} is not supported")
    _check_decoder(path, ds)
    return ds


def _transfer_syntax(ds: Dataset) -> UID:
    """The file meta's transfer syntax; for files without one (no preamble), the encoding pydicom found."""
    syntax = getattr(ds, "file_meta", Dataset()).get("TransferSyntaxUID")
    if syntax is not None:
        return syntax
    implicit, little_endian = ds.original_encoding
    if implicit:
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if little_endian else ExplicitVRBigEndian


def _check_decoder(path: Path, ds: Dataset) -> None:
    """A clear error when the pixel data is compressed in a syntax no installed plugin decodes."""
    syntax = _transfer_syntax(ds)
    if not syntax.is_compressed:
        return
    try:
        available = get_decoder(syntax).is_available
    except NotImplementedError:
        available = False
    if not available:
        raise _error(
            path,
            f"DICOM transfer syntax {syntax.name} ({syntax}) cannot be decoded here: "
            "install a decoder plugin (e.g. pylibjpeg with pylibjpeg-libjpeg/-openjpeg/-rle, or python-gdcm)",
        )


def _dicom_count(ds: Dataset) -> int:
    return max(1, int(ds.get("NumberOfFrames", 1) or 1))


def _region_area(region: Dataset) -> int:
    try:
        return (region.RegionLocationMaxX1 - region.RegionLocationMinX0) * (
            region.RegionLocationMaxY1 - region.RegionLocationMinY0
        )
    except AttributeError:
        return 0


def _dicom_spacing_mm(ds: Dataset) -> tuple[float, float] | None:
    """(row, column) mm per pixel: the largest cm-calibrated ultrasound region, else PixelSpacing, else None.

    Ultrasound regions give PhysicalDeltaX (columns) and PhysicalDeltaY (rows) in cm
    when their units are 3; of several such regions the largest by area wins (the
    first on a tie), since side panels and Doppler strips are smaller than the B-mode.
    """
    calibrated = [
        r
        for r in ds.get("SequenceOfUltrasoundRegions", [])
        if r.get("PhysicalUnitsXDirection") == _CENTIMETRES
        and r.get("PhysicalUnitsYDirection") == _CENTIMETRES
        and r.get("PhysicalDeltaX")
        and r.get("PhysicalDeltaY")
    ]
    if calibrated:
        region = max(calibrated, key=_region_area)
        return abs(float(region.PhysicalDeltaY)) * 10.0, abs(float(region.PhysicalDeltaX)) * 10.0
    spacing = ds.get("PixelSpacing")
    if spacing is not None and len(spacing) == 2 and all(float(s) > 0 for s in spacing):
        return float(spacing[0]), float(spacing[1])
    return None


def _dicom_to_uint8(raw: np.ndarray, ds: Dataset) -> np.ndarray:
    """Decoded pixels (already RGB for YBR) -> uint8 gray or RGB: rescale slope/intercept, bit depth, MONOCHROME1."""
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    pixels = raw
    monochrome = photometric.startswith("MONOCHROME")
    if monochrome and (float(ds.get("RescaleSlope", 1) or 1) != 1 or float(ds.get("RescaleIntercept", 0) or 0) != 0):
        pixels = apply_modality_lut(pixels, ds)
    pixels = _to_uint8(pixels)
    if photometric == "MONOCHROME1":
        pixels = 255 - pixels
    return _gray_if_equal_channels(pixels)


def _dicom_frames(path: Path, ds: Dataset, indices: list[int] | None) -> Iterator[Frame]:
    """Decode frame by frame from the file (pydicom reads only the frames asked for); YBR becomes RGB."""
    count, spacing = _dicom_count(ds), _dicom_spacing_mm(ds)
    wanted = indices if indices is not None else list(range(count))
    try:
        decoded = iter_pixels(path, indices=wanted, as_rgb=True, transfer_syntax_uid=_transfer_syntax(ds))
        for index, raw in zip(wanted, decoded):
            yield Frame(_dicom_to_uint8(raw, ds), path, index, count, spacing)
    except FrameReadError:
        raise
    except Exception as exc:  # decoders and pydicom raise many types for damaged pixel data
        raise _error(path, f"DICOM pixel data cannot be decoded ({_reason(exc)})") from exc


# ---------------------------------------------------------------- video


def _open_video(path: Path) -> cv2.VideoCapture:
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise _error(path, "not a readable video (corrupt file or unsupported codec)")
    return capture


def _video_count(path: Path) -> int:
    """The container's frame count (may be approximate); counted by decoding when it reports none."""
    capture = _open_video(path)
    try:
        reported = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        if reported > 0:
            return reported
        counted = 0
        while capture.grab():
            counted += 1
    finally:
        capture.release()
    if counted == 0:
        raise _error(path, "video contains no readable frames")
    return counted


def _video_frames(path: Path, count: int) -> Iterator[Frame]:
    """Decode until the stream ends, not until ``count``: container counts are often approximate."""
    capture = _open_video(path)
    index = 0
    try:
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            yield Frame(_from_opencv(bgr), path, index, max(count, index + 1))
            index += 1
    finally:
        capture.release()
    if index == 0:
        raise _error(path, "video contains no readable frames")


def _video_frame(path: Path, index: int, count: int) -> Frame:
    """Frame ``index`` by decoding forward from the start (exact, unlike seeking, at O(index) cost)."""
    if index < 0:
        _check_index(path, index, count)
    capture = _open_video(path)
    try:
        decoded = 0
        while decoded < index and capture.grab():
            decoded += 1
        ok, bgr = capture.read() if decoded == index else (False, None)
    finally:
        capture.release()
    if ok:
        return Frame(_from_opencv(bgr), path, index, max(count, index + 1))
    if decoded == 0:
        raise _error(path, "video contains no readable frames")
    raise _error(path, f"frame {index} is out of range (the file has {decoded} frames)")


# ---------------------------------------------------------------- public readers


def read_frames(path: str | os.PathLike) -> Iterator[Frame]:
    """All frames of a file, lazily: video and multi-frame DICOM are decoded one frame at a time.

    The file's type and header are checked now, so a missing or unsupported file fails
    at the call; damaged pixel data fails when its frame is reached.
    """
    path = Path(path)
    kind = _kind(path)
    if kind == "image":
        return iter([Frame(_read_image(path), path)])
    if kind == "dicom":
        return _dicom_frames(path, _dicom_header(path), None)
    return _video_frames(path, _video_count(path))


def read_frame(path: str | os.PathLike, index: int = 0) -> Frame:
    """Frame ``index`` (0-based) of a file."""
    path = Path(path)
    kind = _kind(path)
    if kind == "image":
        _check_index(path, index, 1)
        return Frame(_read_image(path), path)
    if kind == "dicom":
        ds = _dicom_header(path)
        _check_index(path, index, _dicom_count(ds))
        return next(_dicom_frames(path, ds, [index]))
    return _video_frame(path, index, _video_count(path))


def count_frames(path: str | os.PathLike) -> int:
    """Frames in a file without decoding pixels: 1 for images, NumberOfFrames for DICOM, the container's count for video."""
    path = Path(path)
    kind = _kind(path)
    if kind == "image":
        return 1
    if kind == "dicom":
        return _dicom_count(_dicom_header(path))
    return _video_count(path)


def _supported_in(folder: Path, recursive: bool) -> Iterator[Path]:
    """Supported files in ``folder`` (and below, if ``recursive``), skipping hidden files and folders."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")] if recursive else []
        for name in files:
            candidate = Path(root) / name
            if not name.startswith(".") and _is_supported(candidate):
                yield candidate


def find_inputs(paths: str | os.PathLike | Iterable[str | os.PathLike], recursive: bool = True) -> list[Path]:
    """Input files from files and folders, sorted and without duplicates.

    Folders contribute their supported files (images, DICOM by extension or magic,
    video), hidden ones skipped. A path given directly that is not a folder is always
    kept, supported or not, so that reading it later reports the specific problem.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    found: set[Path] = set()
    for given in map(Path, paths):
        if given.is_dir():
            found.update(_supported_in(given, recursive))
        else:
            found.add(given)
    return sorted(found)
