"""Frames from files: one table of readers (still images, DICOM, video) and finding input files.

Every reader hands out :class:`Frame` objects with uint8 pixels, (H, W) gray or
(H, W, 3) RGB, so the rest of the engine never sees bit depths, channel orders or
photometric interpretations. Colour pixels whose three channels are equal become
(H, W) gray, since ultrasound frames are often saved as RGB gray. Every failure is
a :class:`FrameReadError` whose one-line message names the file and the problem,
ready to show to a user.

A format is one :class:`Reader` subclass in :data:`READERS`, with ``count``,
``read`` and ``iter``. The resource limits are checked here, from headers, before
anything is decoded: a frame may hold at most :func:`max_pixels` pixels, and the
frame count of a file is never taken from its header alone (DICOM: the frames its
pixel data holds; video: the frames its stream holds), so a small file cannot make
the program allocate for a billion frames. Frames a header promises but the file
does not hold are reported after the frames that are there.
"""
from __future__ import annotations

import io
import logging
import math
import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, apply_modality_lut, get_decoder, iter_pixels
from pydicom.uid import SegmentationStorage

from ..calibration import Calibration, Spacing
from ..preprocessing import to_gray
from .dicom_header import DicomHeader, read_calibration, read_header
from .files import FileProblem, first_line
from .image_header import FORMATS, image_size
from .memory import DEFAULT_MAX_PIXELS, allocation_problem
from .video_header import MATROSKA_EXTENSIONS, truncated_matroska

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".jpe", ".bmp", ".dib", ".tif", ".tiff"})
DICOM_EXTENSIONS = frozenset({".dcm", ".dicom", ".dic"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".avi", ".mov", ".mkv", ".wmv", ".mpg", ".mpeg", ".webm"})

MAX_PIXELS_VARIABLE = "THYROID_STUDIO_MAX_PIXELS"

# FFmpeg's, OpenCV's and pydicom's own console messages about damaged files would add lines to every
# error; the FrameReadError says it in one. (setdefault: a user who wants FFmpeg's diagnostics can ask.)
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE


def frame_name(source: str | os.PathLike, index: int, count: int) -> str:
    """``"<stem>"`` for single-frame sources, ``"<stem>_f0003"`` (0-based index) otherwise: what outputs are named after."""
    stem = Path(source).stem
    return stem if count == 1 else f"{stem}_f{index:04d}"


@dataclass(frozen=True, eq=False)
class Frame:
    """One 2-D frame and where it came from. Equality is identity: comparing pixel arrays is the caller's job."""

    pixels: np.ndarray  # uint8, (H, W) gray or (H, W, 3) RGB
    source: Path  # the file it came from
    index: int = 0  # frame number inside a multi-frame file
    count: int = 1  # frames in the source
    calibration: Calibration | None = None  # millimetres per pixel and where they hold; None: pixels only

    @property
    def name(self) -> str:
        """:func:`frame_name` of this frame."""
        return frame_name(self.source, self.index, self.count)

    def gray(self) -> np.ndarray:
        """(H, W) uint8."""
        return to_gray(self.pixels)

    def spacing_for(self, mask: np.ndarray) -> Spacing | None:
        """The spacing that holds for ``mask`` on this frame (``Calibration.for_mask``), None without one."""
        return self.calibration.for_mask(mask) if self.calibration else None


class FrameReadError(FileProblem):
    """A file could not be read as frames; the message names the file and the problem."""


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"


def _check_index(path: Path, index: int, count: int) -> None:
    if not 0 <= index < count:
        raise FrameReadError(path, f"frame {index} is out of range (the file has {_plural(count, 'frame')})")


# ---------------------------------------------------------------- limits


def max_pixels() -> int:
    """Pixels one frame may hold: ``$THYROID_STUDIO_MAX_PIXELS``, default 50 million (a 7071 x 7071 frame).

    Ultrasound frames hold about a million; the cap stops a small file whose header
    claims a huge frame from taking all memory (decoding, then every copy the
    pipeline makes of a frame, scale with it). The default is a memory bound:
    ``memory.DEFAULT_MAX_PIXELS`` keeps segmenting one frame under 1.5 GB.
    """
    text = os.environ.get(MAX_PIXELS_VARIABLE, "")
    if not text:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{MAX_PIXELS_VARIABLE}={text!r} is not a positive whole number of pixels")
    return value


def check_frame_size(path: Path, height: int, width: int) -> None:
    """A FrameReadError, before anything is decoded, for a frame of zero size or above :func:`max_pixels`."""
    if height <= 0 or width <= 0:
        raise FrameReadError(path, f"the header gives a frame of {width} x {height} pixels (zero size)")
    try:
        limit = max_pixels()
    except ValueError as exc:
        raise FrameReadError(path, str(exc)) from exc
    if height * width > limit:
        raise FrameReadError(
            path,
            f"a frame of {width} x {height} pixels exceeds the limit of {limit / 1e6:g} megapixels "
            f"(set {MAX_PIXELS_VARIABLE} to raise it)",
        )


def _missing_frames(path: Path, present: int, promised: int, where: str) -> FrameReadError:
    return FrameReadError(
        path,
        f"{where} holds only {present} of the {promised} frames its header gives "
        f"(truncated or damaged file); {promised - present} missing",
    )


# ---------------------------------------------------------------- pixels


_CONVERSION_ROWS = 256  # rows converted at a time, so a large 16-bit frame needs no full-size float copy


class PixelValueError(ValueError):
    """Pixels that hold no image: NaN or infinite values (a float file with no-data cells, an overflowing rescale)."""


def _to_uint8(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels: uint8 passes through; any other dtype (16-bit, signed, float) is rescaled linearly.

    The rescale maps the data's own min..max (not the dtype's full range) onto 0..255,
    because 12-bit scanner data in 16-bit containers would otherwise come out nearly
    black. A constant image becomes all zeros. Float pixels that are NaN or infinite
    are a PixelValueError: one NaN would make the whole frame black (and every such
    frame the same frame), so it is refused where it enters rather than segmented.
    """
    if pixels.dtype == np.uint8:
        return pixels
    low, high = float(pixels.min()), float(pixels.max())  # NaN propagates through min and max: no mask needed
    if not (np.isfinite(low) and np.isfinite(high)):
        raise PixelValueError("its pixels hold NaN or infinite values (no image to measure)")
    out = np.zeros(pixels.shape, np.uint8)
    if high <= low:
        return out
    scale = np.float32(255.0 / (high - low))
    for start in range(0, len(pixels), _CONVERSION_ROWS):
        rows = pixels[start : start + _CONVERSION_ROWS].astype(np.float32)
        rows -= np.float32(low)
        rows *= scale
        out[start : start + _CONVERSION_ROWS] = np.rint(rows, out=rows)
    return out


def _channels_equal(pixels: np.ndarray) -> bool:
    """Whether the three channels are identical, compared a slice of rows at a time (no frame-sized temporaries)."""
    for start in range(0, len(pixels), _CONVERSION_ROWS):
        rows = pixels[start : start + _CONVERSION_ROWS]
        if not (np.array_equal(rows[..., 0], rows[..., 1]) and np.array_equal(rows[..., 1], rows[..., 2])):
            return False
    return True


def _gray_if_equal_channels(pixels: np.ndarray) -> np.ndarray:
    """(H, W) when the three channels are identical (RGB-saved gray frames), else unchanged."""
    if pixels.ndim == 3 and _channels_equal(pixels):
        return np.ascontiguousarray(pixels[..., 0])
    return np.ascontiguousarray(pixels)


def _from_opencv(pixels: np.ndarray) -> np.ndarray:
    """OpenCV's gray / gray+alpha / BGR / BGRA of any bit depth -> uint8 gray or RGB (converted in place where
    possible: a large frame is not copied twice)."""
    if pixels.ndim == 3 and pixels.shape[2] <= 2:
        pixels = pixels[..., 0]  # gray, or gray + alpha
    elif pixels.ndim == 3:
        pixels = pixels[..., :3] if pixels.shape[2] > 3 else pixels  # alpha dropped
    pixels = _to_uint8(pixels)
    if pixels.ndim == 3:
        if _channels_equal(pixels):
            return np.ascontiguousarray(pixels[..., 0])
        pixels = np.ascontiguousarray(pixels)
        cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB, dst=pixels)  # in place
    return np.ascontiguousarray(pixels)


# ---------------------------------------------------------------- the reader interface


class Reader(ABC):
    """One file format: which files it takes, how many frames a file holds, and the frames themselves.

    Every method raises FrameReadError (and only that) for a file it cannot read.
    """

    extensions: frozenset[str] = frozenset()

    def sniff(self, path: Path) -> bool:
        """Whether a file whose extension no reader claims is in this format (by its content)."""
        return False

    @abstractmethod
    def count(self, path: Path) -> int:
        """Frames in the file, from what the file holds (never from a header's claim alone)."""

    @abstractmethod
    def read(self, path: Path, index: int) -> Frame:
        """Frame ``index`` (0-based)."""

    @abstractmethod
    def iter(self, path: Path) -> Iterator[Frame]:
        """All frames, lazily; the header is checked at the call, damaged pixel data fails when reached."""


# ---------------------------------------------------------------- still images


# How every still image is decoded: its own bit depth and colour (alpha dropped), and turned as its EXIF
# Orientation says (JPEG APP1, PNG eXIf, TIFF tag 274), so a frame has the shape every viewer shows and a mask
# drawn or predicted on it has that shape too. (IMREAD_UNCHANGED would ignore the orientation of JPEG and PNG.)
IMAGE_DECODE_FLAGS = cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH


def decode_image(path: str | os.PathLike, data: np.ndarray) -> np.ndarray:
    """A still image's pixels as OpenCV decodes them with :data:`IMAGE_DECODE_FLAGS` (gray or BGR, any bit depth,
    oriented), the size checked from the header first; FrameReadError naming ``path`` when it cannot be decoded."""
    if data.size == 0:
        raise FrameReadError(path, "empty file")
    size = image_size(memoryview(data))
    if size is None:
        raise FrameReadError(path, f"not a readable image (not a {FORMATS} file, or its header is damaged)")
    check_frame_size(Path(path), *size)
    try:
        pixels = cv2.imdecode(data, IMAGE_DECODE_FLAGS)
    except cv2.error as exc:
        problem = allocation_problem(exc)
        raise FrameReadError(path, problem or "not a readable image (corrupt or truncated file)") from exc
    if pixels is None or pixels.size == 0:
        raise FrameReadError(path, "not a readable image (corrupt or truncated file)")
    return pixels


class ImageReader(Reader):
    """PNG, JPEG, BMP, TIFF (8 or 16 bit, or float; the first page of a multi-page TIFF), decoded by OpenCV and
    turned as their EXIF orientation says (:data:`IMAGE_DECODE_FLAGS`)."""

    extensions = IMAGE_EXTENSIONS

    def count(self, path: Path) -> int:
        return 1

    def read(self, path: Path, index: int) -> Frame:
        _check_index(path, index, 1)
        return Frame(self._decode(path), path)

    def iter(self, path: Path) -> Iterator[Frame]:
        return iter([self.read(path, 0)])

    @staticmethod
    def _decode(path: Path) -> np.ndarray:
        """Decode from bytes (np.fromfile + imdecode) so non-ASCII paths work; the size is checked from the header first."""
        try:
            data = np.fromfile(path, dtype=np.uint8)
        except OSError as exc:
            raise FrameReadError(path, f"cannot be read ({exc.strerror or first_line(exc)})") from exc
        try:
            return _from_opencv(decode_image(path, data))
        except PixelValueError as exc:
            raise FrameReadError(path, str(exc)) from None


# ---------------------------------------------------------------- DICOM

_DICOM_MAGIC_OFFSET = 128
_PHOTOMETRICS = {
    "MONOCHROME1", "MONOCHROME2", "RGB", "PALETTE COLOR", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT",
}


@dataclass(frozen=True)
class _DicomImage:
    """A DICOM file checked before anything is decoded: its header and its calibration."""

    header: DicomHeader
    calibration: Calibration | None
    refused: str | None  # why a calibration the file gives was not used (dicom_header.read_calibration)


class DicomReader(Reader):
    """DICOM images, single- and multi-frame, decoded by pydicom frame by frame (YBR and palette colour become RGB).

    The header is read by ``dicom_header``: frames are those the pixel data holds, millimetres
    come from the largest cm-calibrated ultrasound region inside the frame (``Frame.calibration``
    says where they hold) or PixelSpacing; a calibration whose regions all lie outside the
    frame, or whose spacing is not a sane number, is logged as a warning, once per file, and gives
    no millimetres.
    """

    extensions = DICOM_EXTENSIONS

    def sniff(self, path: Path) -> bool:
        """The "DICM" magic at byte 128, for files named without an extension or with a UID-like suffix."""
        try:
            with open(path, "rb") as f:
                f.seek(_DICOM_MAGIC_OFFSET)
                return f.read(4) == b"DICM"
        except OSError:
            return False

    def count(self, path: Path) -> int:
        return self._open(path).header.count

    def read(self, path: Path, index: int) -> Frame:
        image = self._open(path)
        header = image.header
        if header.count <= index < header.promised:
            raise _missing_frames(path, header.count, header.promised, "the pixel data")
        _check_index(path, index, header.count)
        return next(self._frames(path, image, [index]))

    def iter(self, path: Path) -> Iterator[Frame]:
        image = self._open(path)

        def frames() -> Iterator[Frame]:
            yield from self._frames(path, image, None)
            if image.header.count < image.header.promised:
                raise _missing_frames(path, image.header.count, image.header.promised, "the pixel data")

        return frames()

    def _open(self, path: Path) -> _DicomImage:
        try:
            header = read_header(path, inflate_limit=max(64 << 20, 2 * max_pixels()))
            _check_image(path, header)
            image = _DicomImage(header, *read_calibration(header.ds))
        except FrameReadError:
            raise
        except OSError as exc:
            raise FrameReadError(path, f"cannot be read ({exc.strerror or first_line(exc)})") from exc
        except Exception as exc:  # pydicom raises many types for damaged files
            raise FrameReadError(path, f"not a readable DICOM file ({first_line(exc)})") from exc
        if header.count == 0:
            raise FrameReadError(path, "DICOM pixel data holds no whole frame (truncated or damaged file)")
        if image.refused is not None and path not in _refused_calibrations:
            _refused_calibrations.add(path)
            log.warning("%s: %s", path.name, image.refused)
        return image

    @staticmethod
    def _frames(path: Path, image: _DicomImage, indices: list[int] | None) -> Iterator[Frame]:
        """Decode frame by frame from the file (pydicom reads only the frames asked for)."""
        header = image.header
        try:
            if isinstance(header.source, io.BytesIO):
                header.source.seek(0)
            decoded = iter_pixels(header.source, indices=indices, as_rgb=True, transfer_syntax_uid=header.syntax,
                                  number_of_frames=header.count)
            for index, raw in zip(indices if indices is not None else range(header.count), decoded):
                yield Frame(_dicom_to_uint8(raw, header.ds), path, index, header.count, image.calibration)
        except PixelValueError as exc:
            raise FrameReadError(path, str(exc)) from None
        except Exception as exc:  # decoders and pydicom raise many types for damaged pixel data
            raise FrameReadError(path, f"DICOM pixel data cannot be decoded ({first_line(exc)})") from exc


_refused_calibrations: set[Path] = set()  # files already warned about: once per process, not once per frame


def _check_image(path: Path, header: DicomHeader) -> None:
    """An image this build can decode, of a size within the limit."""
    ds = header.ds
    if ds.get("SOPClassUID") == SegmentationStorage:
        raise FrameReadError(path, "is a DICOM SEG (a segmentation, not an image): open it together with the image "
                                   "it references, whose label it is")
    check_frame_size(path, int(ds.Rows), int(ds.Columns))
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if photometric not in _PHOTOMETRICS:
        raise FrameReadError(path, f"DICOM photometric interpretation {photometric} is not supported")
    for keyword in ("RescaleSlope", "RescaleIntercept"):  # numbers from the file, checked where they enter
        value = ds.get(keyword)
        if value is None or value == "":
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number) or (keyword == "RescaleSlope" and number == 0):
            kind = "finite non-zero" if keyword == "RescaleSlope" else "finite"
            raise FrameReadError(path, f"DICOM {keyword} {value!s:.40} is not a {kind} number (no image to measure)")
    if not header.syntax.is_compressed:
        return
    try:
        available = get_decoder(header.syntax).is_available
    except NotImplementedError:
        available = False
    if not available:
        raise FrameReadError(
            path,
            f"DICOM transfer syntax {header.syntax.name} ({header.syntax}) cannot be decoded here: "
            "install a decoder plugin (e.g. pylibjpeg with pylibjpeg-libjpeg/-openjpeg/-rle, or python-gdcm)",
        )


def _dicom_to_uint8(raw: np.ndarray, ds: Dataset) -> np.ndarray:
    """Decoded pixels (already RGB for YBR) -> uint8 gray or RGB: palette, rescale slope/intercept, bit depth (fewer
    than 8 bits stored in a byte, 1-bit frames among them, spread over 0..255), MONOCHROME1."""
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2"))
    if photometric == "PALETTE COLOR":
        rgb = apply_color_lut(raw, ds)
        if rgb.dtype != np.uint8:  # 16-bit palette entries; some writers store 8-bit values in them
            rgb = rgb if rgb.max() <= 255 else rgb >> 8
        return _gray_if_equal_channels(rgb.astype(np.uint8))
    pixels = raw
    monochrome = photometric.startswith("MONOCHROME")
    if monochrome and (float(ds.get("RescaleSlope", 1) or 1) != 1 or float(ds.get("RescaleIntercept", 0) or 0) != 0):
        pixels = apply_modality_lut(pixels, ds)
    bits = int(ds.get("BitsStored", 8) or 8)
    if pixels.dtype == np.uint8 and 1 <= bits < 8:  # 1-bit, 4-bit, ... stored in bytes: spread over 0..255
        pixels = ((pixels & ((1 << bits) - 1)).astype(np.uint16) * 255 // ((1 << bits) - 1)).astype(np.uint8)
    pixels = _to_uint8(pixels)
    if photometric == "MONOCHROME1":
        pixels = 255 - pixels
    return _gray_if_equal_channels(pixels)


# ---------------------------------------------------------------- video

# Containers whose header gives an exact frame count, so fewer frames in the stream means a truncated file.
# (Others give only an estimate from duration and frame rate; for Matroska/WebM the estimate counts as the
# promise when the file is shorter than its header says, video_header.truncated_matroska. MPEG program
# streams say nothing about their length.)
_EXACT_COUNT_EXTENSIONS = frozenset({".avi", ".mp4", ".m4v", ".mov"})


@dataclass(frozen=True)
class _Stream:
    """What counting a video's packets found: how many, how many its header promises (0: it only estimates), and the
    frames whose coded size differs from the first's (index -> (height, width))."""

    packets: int
    promised: int
    odd_sizes: dict[int, tuple[int, int]]


class VideoReader(Reader):
    """Video files through OpenCV's FFmpeg backend, decoded one frame at a time.

    The container's frame count is a claim: ``count`` counts the stream's packets
    (demuxing without decoding), and reading reports frames the header promised
    that the stream does not hold. While counting, each packet that is a still image
    (MJPEG's JPEGs) is measured: FFmpeg would stretch a frame of another size to the
    clip's, silently, so such a frame is a FrameReadError when reached (its pixel
    measurements would be off by the stretch). Other codecs' frame sizes are not seen.
    """

    extensions = VIDEO_EXTENSIONS

    def count(self, path: Path) -> int:
        return self._stream(path).packets

    def read(self, path: Path, index: int) -> Frame:
        stream = self._stream(path)
        count, promised = stream.packets, stream.promised
        if count <= index < promised:
            raise _missing_frames(path, count, promised, "the video")
        _check_index(path, index, count)
        _check_size(path, stream, index)
        capture = self._open(path)
        try:
            decoded = 0
            while decoded < index and capture.grab():
                decoded += 1
            ok, bgr = capture.read() if decoded == index else (False, None)
        finally:
            capture.release()
        if not ok:
            raise FrameReadError(path, f"frame {index} cannot be decoded (damaged video; {decoded} frames before it)")
        return Frame(_from_opencv(bgr), path, index, count)

    def iter(self, path: Path) -> Iterator[Frame]:
        stream = self._stream(path)
        count, promised = stream.packets, stream.promised

        def frames() -> Iterator[Frame]:
            capture = self._open(path)
            index = 0
            try:
                while True:
                    ok, bgr = capture.read()
                    if not ok:
                        break
                    _check_size(path, stream, index)
                    yield Frame(_from_opencv(bgr), path, index, max(count, index + 1))
                    index += 1
            finally:
                capture.release()
            if index == 0:
                raise FrameReadError(path, "video contains no readable frames")
            if index < max(count, promised):
                raise _missing_frames(path, index, max(count, promised), "the video")

        return frames()

    @staticmethod
    def _open(path: Path) -> cv2.VideoCapture:
        """An opened capture whose frame size is within the limit."""
        if not os.access(path, os.R_OK):
            raise FrameReadError(path, "cannot be read (permission denied)")
        capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        if not capture.isOpened():
            capture.release()
            raise FrameReadError(path, "not a readable video (corrupt file or unsupported codec)")
        try:
            check_frame_size(path, int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)))
        except FrameReadError:
            capture.release()
            raise
        return capture

    def _stream(self, path: Path) -> _Stream:
        """The stream's packets, the frames its container's header promises, and its frames of an odd size."""
        capture = self._open(path)
        odd: dict[int, tuple[int, int]] = {}
        first: tuple[int, int] | None = None
        try:
            suffix = path.suffix.lower()
            header_count = suffix in _EXACT_COUNT_EXTENSIONS or (suffix in MATROSKA_EXTENSIONS and truncated_matroska(path))
            promised = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if header_count else 0
            capture.set(cv2.CAP_PROP_FORMAT, -1)  # raw packets: count without decoding (decodes where unsupported)
            packets = 0
            while capture.grab():
                ok, packet = capture.retrieve()
                still = ok and packet is not None and packet.dtype == np.uint8  # raw: a packet's bytes
                size = image_size(packet.reshape(-1)) if still else None
                if size is not None:
                    first = first or size
                    if size != first:
                        odd[packets] = size
                packets += 1
        finally:
            capture.release()
        if packets == 0:
            raise FrameReadError(path, "video contains no readable frames")
        return _Stream(packets, max(promised, 0), odd if first else {})


def _check_size(path: Path, stream: _Stream, index: int) -> None:
    if index in stream.odd_sizes:
        height, width = stream.odd_sizes[index]
        raise FrameReadError(path, f"frame {index} is coded at {width} x {height} pixels, unlike the frames before it; "
                                   "the decoder would stretch it to the clip's size (and its measurements with it)")


# ---------------------------------------------------------------- the table and the public readers

READERS: tuple[Reader, ...] = (ImageReader(), DicomReader(), VideoReader())
SUPPORTED_EXTENSIONS = frozenset().union(*(reader.extensions for reader in READERS))


def _claimed(path: Path) -> Reader | None:
    """The reader for ``path``: by extension, else (an unknown or no extension) by content."""
    suffix = path.suffix.lower()
    for reader in READERS:
        if suffix in reader.extensions:
            return reader
    if not path.is_file():  # a pipe or device: reading its content to sniff it could block forever
        return None
    return next((reader for reader in READERS if reader.sniff(path)), None)


def reader_for(path: str | os.PathLike) -> Reader:
    """The reader of a file; a FrameReadError for a missing file, a folder or an unknown type."""
    path = Path(path)
    if not path.exists():
        raise FrameReadError(path, "file not found")
    if path.is_dir():
        try:
            os.scandir(path).close()
        except OSError as exc:
            raise FrameReadError(path, f"is a folder that cannot be read ({exc.strerror or first_line(exc)})") from exc
        raise FrameReadError(path, "is a folder, not a file")
    if not path.is_file():
        raise FrameReadError(path, "not a regular file (a pipe, socket or device)")
    reader = _claimed(path)
    if reader is None:
        raise FrameReadError(path, f"unsupported file type {path.suffix.lower() or '(no extension)'!r}")
    return reader


def is_dicom(path: str | os.PathLike) -> bool:
    """True for a DICOM extension, or, for other unknown names (no or UID-like suffix), the "DICM" magic at byte 128."""
    return isinstance(_claimed(Path(path)), DicomReader)


def read_frames(path: str | os.PathLike) -> Iterator[Frame]:
    """All frames of a file, lazily: video and multi-frame DICOM are decoded one frame at a time.

    The file's type and header are checked now, so a missing or unsupported file fails
    at the call; damaged pixel data fails when its frame is reached, and frames that
    the header promised but the file does not hold fail after the last frame read.
    """
    return reader_for(path).iter(Path(path))


def read_frame(path: str | os.PathLike, index: int = 0) -> Frame:
    """Frame ``index`` (0-based) of a file."""
    return reader_for(path).read(Path(path), index)


def count_frames(path: str | os.PathLike) -> int:
    """Frames a file holds, from headers and the pixel data's extent, without decoding pixels (video: demuxing)."""
    return reader_for(path).count(Path(path))


def _supported_in(folder: Path, recursive: bool) -> Iterator[Path]:
    """Supported files in ``folder`` (and below, if ``recursive``), skipping hidden files and folders.

    A sub-folder that cannot be listed is yielded itself, so that reading it reports the problem.
    """
    unreadable: list[Path] = []
    for root, dirs, files in os.walk(folder, onerror=lambda exc: unreadable.append(Path(exc.filename))):
        dirs[:] = [d for d in dirs if not d.startswith(".")] if recursive else []
        for name in files:
            candidate = Path(root) / name
            if not name.startswith(".") and _claimed(candidate) is not None:
                yield candidate
    yield from unreadable


def find_inputs(paths: str | os.PathLike | Iterable[str | os.PathLike], recursive: bool = True) -> list[Path]:
    """Input files from files and folders, sorted and without duplicates.

    Folders contribute their supported files (images, DICOM by extension or magic,
    video), hidden ones skipped. A path given directly that is not a folder is always
    kept, supported or not, and so is a folder that cannot be listed, so that reading
    it later reports the specific problem.
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
