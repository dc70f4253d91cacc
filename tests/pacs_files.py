"""DICOM studies for the PACS and SEG tests: ultrasound DICOMs made from real DDTI frames (one frame, or a
cine of many), pydicom's own ultrasound test files, and a small DICOMweb server that lists a series whose
instances are all gone (a state Orthanc never reports, some PACS do)."""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import UltrasoundMultiFrameImageStorage, generate_uid

from frame_files import us_region, write_dicom

# pydicom's bundled ultrasound files (no download): RGB big endian, JPEG 2000, palette colour (with calibration
# regions), RGB, and a 30-frame YBR JPEG cine
PYDICOM_US = ("ExplVR_BigEnd.dcm", "examples_jpeg2k.dcm", "examples_palette.dcm", "examples_rgb_color.dcm",
              "examples_ybr_color.dcm")
SPACING_CM = 0.006  # a synthetic calibration: 0.06 mm per pixel over the whole frame


def pydicom_us(name: str) -> Path:
    return Path(get_testdata_file(name))


def ddti_frames(shared_data: Path, count: int) -> np.ndarray:
    """The first ``count`` distinct single DDTI frames (ids below 10000: all 560 x 360 gray; ids 1 and 2 are one
    image with two nodules, taken once) as (N, H, W) uint8."""
    ids = sorted(int(p.stem) for p in (shared_data / "ddti" / "image").glob("*.png") if int(p.stem) < 10000)
    frames: dict[bytes, np.ndarray] = {}
    for i in ids:
        pixels = cv2.imread(str(shared_data / "ddti" / "image" / f"{i}.png"), cv2.IMREAD_GRAYSCALE)
        frames.setdefault(pixels.tobytes(), pixels)
        if len(frames) == count:
            break
    return np.stack(list(frames.values()))


def ddti_dicom(path: Path, frames: np.ndarray, patient: str = "TS-DDTI", study_uid: str | None = None,
               series_uid: str | None = None, number: int = 1) -> Path:
    """An ultrasound DICOM of DDTI frames ((H, W): one frame; (N, H, W): a US multi-frame cine), with patient,
    study and series (new ones unless given), instance ``number``, and a cm-calibrated region over the whole
    frame."""
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = frames.shape[-2:]
    count = 1 if frames.ndim == 2 else len(frames)
    write_dicom(path, frames, frames=count, PatientID=patient, PatientName="Test^DDTI", PatientBirthDate="",
                PatientSex="O", StudyInstanceUID=study_uid or generate_uid(),
                SeriesInstanceUID=series_uid or generate_uid(), StudyDate="20240102", StudyTime="101500", StudyID="1",
                AccessionNumber="", SeriesNumber=1, InstanceNumber=number, ReferringPhysicianName="", StudyDescription="Thyroid (DDTI frames)",
                SequenceOfUltrasoundRegions=[us_region(width - 1, height - 1, SPACING_CM, SPACING_CM)])
    if count > 1:  # a cine is a US multi-frame image
        ds = pydicom.dcmread(path)
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = UltrasoundMultiFrameImageStorage
        ds.FrameTime, ds.FrameIncrementPointer = 33.3, pydicom.tag.Tag("FrameTime")
        ds.save_as(path, enforce_file_format=True)
    return path


@contextmanager
def series_without_instances() -> Iterator[tuple[str, str, str]]:
    """A DICOMweb server on localhost whose one study lists one series with no instances:
    (its URL, the study UID, the series UID)."""
    study, series = "1.2.3.4", "1.2.3.4.5"

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            path = self.path.split("?")[0]
            if path == "/dicom-web/studies":
                body = [{"0020000D": {"vr": "UI", "Value": [study]}}]
            elif path == f"/dicom-web/studies/{study}/series":
                body = [{"0020000E": {"vr": "UI", "Value": [series]}, "00080060": {"vr": "CS", "Value": ["US"]}}]
            elif path == f"/dicom-web/studies/{study}/series/{series}/instances":
                body = []
            else:
                self.send_error(404)
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/dicom+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/dicom-web", study, series
    finally:
        server.shutdown()
        server.server_close()
