"""DICOM Segmentation objects (SEG) of ultrasound frames: masks out to a PACS or a viewer, and back in as labels.

A SEG written here describes one frame of one source DICOM instance: each :class:`Segment` (the label,
the model's nodule, its gland) is one binary segment, with what it outlines (:data:`STRUCTURES`, coded in
SNOMED CT) and who drew it: an :class:`Algorithm` (a model's name and version, plain strings) for an AI
mask, none for a label drawn or corrected by hand (DICOM's MANUAL). The SEG references the source's SOP
instance and, for a multi-frame cine, the frame (Referenced Frame Number), copies the patient and study,
and carries the frame's pixel spacing over (Pixel Measures). It is built by ``highdicom``, which checks
what it writes against the standard's modules, and written atomically.

Two things highdicom does not do for ultrasound, done here: a frame of a multi-frame cine without a frame
of reference (highdicom takes only single frames then; the SEG is built against the frame alone and its
references then name the frame), and Patient Orientation (Type 2C, empty, as a SEG without a frame of
reference needs it). A 2-D ultrasound frame has no slice thickness; DICOM asks for none in a SEG without
a frame of reference, but highdicom's reader refuses Pixel Measures without one, so the source's is
copied, else :data:`NOMINAL_SLICE_MM` is written.

Reading (:func:`read_seg`) gives every segment's mask for each source frame it references; a SEG that
references another instance, or whose size or frames do not match the frame it is read for, is one
:class:`SegError` line (:meth:`SegFile.label_for`).
"""
from __future__ import annotations

import copy
import io
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import UID, SecondaryCaptureImageStorage, SegmentationStorage, UltrasoundImageStorage, generate_uid

from ... import __version__
from ..calibration import Spacing
from .dicom_header import DicomHeader, read_calibration, read_header
from .files import FileProblem, atomic_path, first_line
from .frames import is_dicom

MANUFACTURER = "Thyroid Studio"
MODEL_NAME = "thyroid-studio"
SERIES_NUMBER = 900  # high, so viewers list the derived series after the acquired ones
SERIES_DESCRIPTION = "Thyroid Studio segmentation (research use, not diagnosis)"
NOMINAL_SLICE_MM = 1.0  # see the module docstring: written only for highdicom's reader
SUFFIX = "_seg.dcm"  # what a SEG written beside a mask is named after: <frame name>_seg.dcm
# Type 2 attributes a SEG copies from its source; a source without them gets them empty (allowed for Type 2).
_TYPE2_COPIED = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyID",
                 "StudyDate", "StudyTime", "ReferringPhysicianName")
_REQUIRED = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")


CodeValue = tuple[str, str, str]  # (value, coding scheme, meaning): made a pydicom Code when a SEG is written


@dataclass(frozen=True)
class Structure:
    """What a segment outlines, as DICOM codes it (Segmented Property Category and Type)."""

    title: str
    category: CodeValue
    type: CodeValue


# SNOMED CT codes as pydicom's code dictionary has them (written out: importing it takes 0.1 s)
_THYROID = ("69748006", "SCT", "Thyroid")  # also the anatomic region of every segment
STRUCTURES = {
    "nodule": Structure("Thyroid nodule", ("49755003", "SCT", "Morphologically Abnormal Structure"),
                        ("27925004", "SCT", "Nodule")),
    "gland": Structure("Thyroid gland", ("91723000", "SCT", "Anatomical Structure"), _THYROID),
}
_ARTIFICIAL_INTELLIGENCE = ("123110", "DCM", "Artificial Intelligence")  # the algorithm family (CID 7162)


@dataclass(frozen=True)
class Algorithm:
    """The model that made a mask: its name and version, as DICOM's Algorithm Identification names them."""

    name: str
    version: str


@dataclass(frozen=True)
class Segment:
    """One mask to write: which :data:`STRUCTURES` entry it outlines, and who drew it (None: by hand)."""

    structure: str
    mask: np.ndarray  # (H, W) bool, the frame's size
    algorithm: Algorithm | None = None

    @property
    def label(self) -> str:
        """The segment's label: the structure, and the model for an AI mask."""
        title = STRUCTURES[self.structure].title
        return title if self.algorithm is None else f"{title} ({self.algorithm.name} {self.algorithm.version})"


class SegError(FileProblem):
    """A SEG cannot be written for a frame, or read as one; the message names the file and the problem."""


# ---------------------------------------------------------------- which files


def is_seg(path: str | os.PathLike) -> bool:
    """True for a DICOM file whose SOP class is Segmentation Storage (header read only; False if unreadable)."""
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True, specific_tags=["SOPClassUID"])
    except Exception:  # noqa: BLE001 - pydicom raises many types for files that are not DICOM
        return False
    return ds.get("SOPClassUID") == SegmentationStorage


def instance_uid(path: str | os.PathLike) -> str:
    """The SOP Instance UID of an image DICOM (its header only): what a SEG of it references."""
    ds = pydicom.dcmread(path, stop_before_pixels=True, force=True, specific_tags=["SOPInstanceUID"])
    uid = ds.get("SOPInstanceUID")
    if not uid:
        raise SegError(path, "has no SOP Instance UID, so no SEG can reference it")
    return str(uid)


# ---------------------------------------------------------------- writing


def _source_header(source: Path) -> DicomHeader:
    """The header of an image DICOM that a SEG can reference; SegError saying why not."""
    try:
        header = read_header(source)
    except Exception as exc:  # noqa: BLE001 - the header reader's and pydicom's many types
        raise SegError(source, f"not a readable image DICOM ({first_line(exc)})") from exc
    if header.ds.get("SOPClassUID") == SegmentationStorage:
        raise SegError(source, "is a SEG itself, not an image")
    missing = [name for name in _REQUIRED if not header.ds.get(name)]
    if missing:
        raise SegError(source, f"has no {', '.join(missing)}, so no SEG can reference it")
    return header


def seg_problem(source: str | os.PathLike) -> str | None:
    """Why no SEG can be made of frames of ``source`` (not DICOM, no UIDs to reference, ...), or None."""
    if not is_dicom(source):
        return "not a DICOM file, so there is no instance for a SEG to reference"
    try:
        _source_header(Path(source))
    except SegError as exc:
        return exc.problem
    return None


def seg_dataset(source: str | os.PathLike, frame_index: int, segments: Sequence[Segment], *,
                series_uid: str | None = None, instance_number: int = 1) -> Dataset:
    """The SEG of frame ``frame_index`` (0-based) of the DICOM ``source``: one binary segment per ``segments``
    entry, in order. ``series_uid``: the series it joins (default: a new one). SegError for a source that is not
    an image DICOM a SEG can reference, or masks that are not the frame's size."""
    import highdicom as hd

    source = Path(source)
    if not segments:
        raise SegError(source, "a SEG needs at least one segment")
    header = _source_header(source)
    ds = header.ds
    if not 0 <= frame_index < header.count:
        raise SegError(source, f"has no frame {frame_index} (it holds {header.count})")
    shape = (int(ds.Rows), int(ds.Columns))
    for segment in segments:
        if segment.structure not in STRUCTURES:
            raise ValueError(f"unknown structure {segment.structure!r}; known: {', '.join(STRUCTURES)}")
        if segment.mask.shape != shape:
            raise SegError(source, f"a {segment.mask.shape[1]}x{segment.mask.shape[0]} mask for its "
                                   f"{shape[1]}x{shape[0]} frames")
    multi_frame = "NumberOfFrames" in ds
    view = _single_frame_view(ds)
    calibration, _ = read_calibration(ds)
    pixels = np.stack([np.asarray(s.mask, bool) for s in segments], axis=-1)[np.newaxis].astype(np.uint8)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # highdicom's notes on the source's own values (person names, ...)
            seg = hd.seg.Segmentation(
                source_images=[view], pixel_array=pixels, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
                segment_descriptions=[_description(hd, number, s) for number, s in enumerate(segments, 1)],
                series_instance_uid=series_uid or generate_uid(), series_number=SERIES_NUMBER,
                sop_instance_uid=generate_uid(), instance_number=instance_number, manufacturer=MANUFACTURER,
                manufacturer_model_name=MODEL_NAME, software_versions=__version__, device_serial_number="none",
                pixel_measures=_pixel_measures(hd, calibration.spacing_mm if calibration else None, ds),
                omit_empty_frames=False, content_label="THYROID",
                content_description=SERIES_DESCRIPTION, series_description=SERIES_DESCRIPTION)
    except (AttributeError, TypeError, ValueError) as exc:
        raise SegError(source, f"no SEG can be made of it ({first_line(exc)})") from exc
    seg.PatientOrientation = ds.get("PatientOrientation", "")
    if multi_frame:
        _name_the_frame(seg, ds.SOPClassUID, frame_index + 1)
    return seg


def _single_frame_view(ds: Dataset) -> Dataset:
    """The source's header as highdicom takes it: a single-frame image, with empty Type 2 attributes where it has
    none."""
    view = copy.deepcopy(ds)
    if "NumberOfFrames" in view:  # built as a single-frame image; _name_the_frame then names the class and frame
        del view.NumberOfFrames
        view.SOPClassUID = UltrasoundImageStorage if view.get("Modality") == "US" else SecondaryCaptureImageStorage
    for name in _TYPE2_COPIED:
        if name not in view or not _conformant(view[name]):
            setattr(view, name, "")  # Type 2: empty is allowed; a date like "1997.04.24" is not
    return view


def _conformant(element) -> bool:
    """Whether a date or time element's value parses as its VR says (old files hold "14:04:38", "1997.04.24")."""
    parse = {"DA": pydicom.valuerep.DA, "TM": pydicom.valuerep.TM}.get(element.VR)
    if parse is None or not element.value:
        return True
    try:
        parse(element.value)
    except ValueError:
        return False
    return True


def _description(hd, number: int, segment: Segment):
    from pydicom.sr.coding import Code

    structure = STRUCTURES[segment.structure]
    automatic = segment.algorithm is not None
    algorithm = hd.AlgorithmIdentificationSequence(
        name=segment.algorithm.name, family=Code(*_ARTIFICIAL_INTELLIGENCE),
        version=segment.algorithm.version) if automatic else None
    return hd.seg.SegmentDescription(
        segment_number=number, segment_label=segment.label, segmented_property_category=Code(*structure.category),
        segmented_property_type=Code(*structure.type), anatomic_regions=[Code(*_THYROID)],
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC if automatic
        else hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        algorithm_identification=algorithm)


def _pixel_measures(hd, spacing_mm: Spacing | None, ds: Dataset):
    if spacing_mm is None:
        return None
    thickness = ds.get("SliceThickness")
    return hd.PixelMeasuresSequence(pixel_spacing=[float(v) for v in spacing_mm],
                                    slice_thickness=float(thickness) if thickness else NOMINAL_SLICE_MM)


def _name_the_frame(seg: Dataset, source_class: UID, frame_number: int) -> None:
    """References to a multi-frame source name its class and the frame (1-based), as built for the frame alone."""
    for series in seg.ReferencedSeriesSequence:
        for item in series.ReferencedInstanceSequence:
            item.ReferencedSOPClassUID = source_class
    for frame in seg.PerFrameFunctionalGroupsSequence:
        for derivation in frame.get("DerivationImageSequence", []):
            for item in derivation.SourceImageSequence:
                item.ReferencedSOPClassUID = source_class
                item.ReferencedFrameNumber = frame_number


def seg_bytes(source: str | os.PathLike, frame_index: int, segments: Sequence[Segment], **options) -> bytes:
    """The file bytes of :func:`seg_dataset` (a DICOM file with its preamble and file meta)."""
    buffer = io.BytesIO()
    seg_dataset(source, frame_index, segments, **options).save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def write_seg(path: str | os.PathLike, source: str | os.PathLike, frame_index: int, segments: Sequence[Segment],
              **options) -> Path:
    """Write the SEG of a frame to ``path`` atomically (see :func:`seg_dataset`)."""
    data = seg_bytes(source, frame_index, segments, **options)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


# ---------------------------------------------------------------- reading

SourceFrame = tuple[str, int]  # (SOP Instance UID, 0-based frame) of a frame a SEG covers


@dataclass(frozen=True)
class SegSegment:
    """One segment read back: its number, label, the :data:`STRUCTURES` key its codes match (None: another
    structure), the algorithm (None: manual), and its mask for each source frame it covers."""

    number: int
    label: str
    structure: str | None
    algorithm: Algorithm | None
    masks: dict[SourceFrame, np.ndarray] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class SegFile:
    """A SEG read back: the source frames it covers and its segments."""

    path: Path
    frames: tuple[SourceFrame, ...]  # in the order of its references; frame 0 for a single-frame source
    shape: tuple[int, int]
    segments: tuple[SegSegment, ...]
    spacing_mm: Spacing | None = None

    @property
    def instances(self) -> tuple[str, ...]:
        """The SOP Instance UIDs it references, in order."""
        return tuple(dict.fromkeys(uid for uid, _ in self.frames))

    def truth_segment(self) -> SegSegment:
        """The segment that is the frames' ground truth: the only one, else the first nodule drawn by hand,
        else the first nodule. SegError when several segments hold no nodule."""
        if len(self.segments) == 1:
            return self.segments[0]
        nodules = [s for s in self.segments if s.structure == "nodule"]
        manual = [s for s in nodules if s.algorithm is None]
        if not nodules:
            raise SegError(self.path, f"{len(self.segments)} segments ({', '.join(s.label for s in self.segments)}), "
                                      "none of them a nodule: no ground truth to take")
        return (manual or nodules)[0]

    def label_for(self, uid: str, frame_index: int, shape: tuple[int, int]) -> np.ndarray:
        """The ground-truth mask of frame ``frame_index`` of the instance ``uid``; SegError, one line, when this
        SEG references another instance, does not cover that frame, or is not the frame's size."""
        if uid not in self.instances:
            shown = ", ".join(self.instances[:2]) + (f" and {len(self.instances) - 2} more" * (len(self.instances) > 2))
            raise SegError(self.path, f"references another instance ({shown}), not this frame's ({uid})")
        if (uid, frame_index) not in self.frames:
            covered = ", ".join(str(f + 1) for u, f in self.frames if u == uid)
            raise SegError(self.path, f"covers frame {covered} of its source, not frame {frame_index + 1}")
        if shape != self.shape:
            raise SegError(self.path, f"its masks are {self.shape[1]}x{self.shape[0]}, the frame {shape[1]}x{shape[0]}")
        return self.truth_segment().masks[(uid, frame_index)]


def read_seg(path: str | os.PathLike) -> SegFile:
    """Read a SEG: every segment's mask for each source frame it covers (fractional segments thresholded at one
    half). SegError, one line, for a file that is not a readable SEG."""
    import highdicom as hd

    path = Path(path)
    try:
        ds = pydicom.dcmread(path, force=True)
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types for damaged files
        raise SegError(path, f"not a readable DICOM file ({first_line(exc)})") from exc
    if ds.get("SOPClassUID") != SegmentationStorage:
        raise SegError(path, "not a DICOM SEG (its SOP class is not Segmentation Storage)")
    references, aligned = _references(path, ds)
    if not aligned:
        raise SegError(path, "its frames do not say they keep the pixel positions of their source (Spatial "
                             "Locations Preserved), so they cannot be laid on a frame")
    masks: dict[SourceFrame, np.ndarray] = {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            seg = hd.seg.Segmentation.from_dataset(ds, copy=False)
            numbers = list(seg.segment_numbers)
            for uid, frame_numbers in references.items():
                if frame_numbers == [None]:
                    stack = seg.get_pixels_by_source_instance([uid], segment_numbers=numbers)
                    masks[(uid, 0)] = _binary(stack[0])
                else:
                    stack = seg.get_pixels_by_source_frame(uid, frame_numbers, segment_numbers=numbers)
                    masks.update({(uid, n - 1): _binary(plane) for n, plane in zip(frame_numbers, stack)})
            descriptions = [seg.get_segment_description(number) for number in numbers]
    except (AttributeError, KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise SegError(path, f"its segments cannot be read ({first_line(exc)})") from exc
    segments = tuple(
        SegSegment(number, str(description.segment_label), _structure(description), _algorithm(description),
                   {frame: np.ascontiguousarray(planes[:, :, s]) for frame, planes in masks.items()})
        for s, (number, description) in enumerate(zip(numbers, descriptions)))
    return SegFile(path, tuple(masks), (int(ds.Rows), int(ds.Columns)), segments, _spacing(ds))


def _binary(planes: np.ndarray) -> np.ndarray:
    """(H, W, segments) bool: fractional values above one half, other values above zero."""
    return planes > 0.5 if planes.dtype.kind == "f" else planes > 0


def covered_frames(path: str | os.PathLike) -> tuple[SourceFrame, ...]:
    """The source frames a SEG covers, from its header alone (no pixel is read): what pairs it with the frames
    opened beside it. SegError when it is not a readable SEG."""
    path = Path(path)
    try:
        ds = pydicom.dcmread(path, force=True, stop_before_pixels=True)
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types for damaged files
        raise SegError(path, f"not a readable DICOM file ({first_line(exc)})") from exc
    if ds.get("SOPClassUID") != SegmentationStorage:
        raise SegError(path, "not a DICOM SEG (its SOP class is not Segmentation Storage)")
    references, _ = _references(path, ds)
    return tuple((uid, 0 if n is None else n - 1) for uid, numbers in references.items() for n in numbers)


def _references(path: Path, ds: Dataset) -> tuple[dict[str, list[int | None]], bool]:
    """Each source instance the SEG's frames derive from, with its Referenced Frame Numbers (``[None]``: the
    instance is a single-frame image), in the order the SEG names them; and whether every frame says it keeps
    the pixel positions of its source (Spatial Locations Preserved), without which it cannot be laid on one."""
    shared = ds.get("SharedFunctionalGroupsSequence", [Dataset()])[0]
    found: dict[str, list[int | None]] = {}
    aligned = True
    for frame in ds.get("PerFrameFunctionalGroupsSequence", []):
        derivations = frame.get("DerivationImageSequence") or shared.get("DerivationImageSequence") or []
        for derivation in derivations:
            for item in derivation.get("SourceImageSequence", []):
                aligned &= item.get("SpatialLocationsPreserved") in ("YES", "REORIENTED_ONLY")
                value = item.get("ReferencedFrameNumber")
                known = found.setdefault(str(item.ReferencedSOPInstanceUID), [])
                for number in value if isinstance(value, pydicom.multival.MultiValue) else [value]:
                    number = None if number is None else int(number)
                    if number not in known:
                        known.append(number)
    if not found:
        raise SegError(path, "names no source image for its frames (no Derivation Image Sequence)")
    return found, aligned


def _structure(description) -> str | None:
    kind = description.segmented_property_type
    return next((key for key, s in STRUCTURES.items() if (kind.value, kind.scheme_designator) == s.type[:2]), None)


def _algorithm(description) -> Algorithm | None:
    if description.SegmentAlgorithmType == "MANUAL":
        return None
    items = description.get("SegmentationAlgorithmIdentificationSequence") or [Dataset()]
    name = items[0].get("AlgorithmName") or description.get("SegmentAlgorithmName") or ""
    return Algorithm(str(name), str(items[0].get("AlgorithmVersion", "")))


def _spacing(ds: Dataset) -> Spacing | None:
    shared = ds.get("SharedFunctionalGroupsSequence", [Dataset()])[0]
    measures = shared.get("PixelMeasuresSequence")
    spacing = measures[0].get("PixelSpacing") if measures else None
    return (float(spacing[0]), float(spacing[1])) if spacing and len(spacing) == 2 else None


# ---------------------------------------------------------------- SEGs beside frames


def index_segs(paths: Iterable[str | os.PathLike]) -> tuple[dict[SourceFrame, Path], list[str]]:
    """The SEGs among ``paths`` (other files are passed over) by the source frames they cover, the first in order
    winning a frame; and one line for each SEG that cannot be read."""
    found: dict[SourceFrame, Path] = {}
    problems = []
    for path in map(Path, paths):
        if not (is_dicom(path) and is_seg(path)):
            continue
        try:
            for frame in covered_frames(path):
                found.setdefault(frame, path)
        except SegError as exc:
            problems.append(str(exc))
    return found, problems


class SegLabels:
    """Ground truth from SEGs for frames of DICOM files: each SEG read once however many frames it covers, each
    source's instance UID read once from its header. :meth:`strangers` names the SEGs that reference none of the
    files asked about."""

    def __init__(self, segs: dict[SourceFrame, Path]) -> None:
        self.segs = segs
        self._uids: dict[Path, str | None] = {}
        self._read: dict[Path, SegFile] = {}

    def instance(self, source: str | os.PathLike) -> str | None:
        """The SOP Instance UID of a DICOM file (None for other files and unreadable ones), read once."""
        source = Path(source)
        if source not in self._uids:
            try:
                self._uids[source] = instance_uid(source) if is_dicom(source) else None
            except (SegError, OSError, ValueError, pydicom.errors.InvalidDicomError):
                self._uids[source] = None
        return self._uids[source]

    def seg_for(self, source: str | os.PathLike, frame_index: int) -> Path | None:
        """The SEG that covers a frame, or None (not DICOM, no SEG)."""
        uid = self.instance(source)
        return None if uid is None else self.segs.get((uid, frame_index))

    def label(self, source: str | os.PathLike, frame_index: int, shape: tuple[int, int]) -> np.ndarray | None:
        """The frame's ground truth from the SEG that covers it; None without one; SegError when it does not fit."""
        path = self.seg_for(source, frame_index)
        if path is None:
            return None
        if path not in self._read:
            self._read = {path: read_seg(path)}  # keep one: SEGs are read frame after frame
        return self._read[path].label_for(self.instance(source), frame_index, shape)

    def strangers(self) -> list[tuple[Path, str]]:
        """(SEG, the first instance it references) for each SEG that references none of the files asked about."""
        known = {uid for uid in self._uids.values() if uid is not None}
        first: dict[Path, str] = {}
        references: dict[Path, set[str]] = {}
        for (uid, _), path in self.segs.items():
            first.setdefault(path, uid)
            references.setdefault(path, set()).add(uid)
        return [(path, uid) for path, uid in first.items() if not references[path] & known]
