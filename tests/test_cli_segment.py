"""`thyroid-studio segment` end to end, in-process, on real DDTI frames, a DICOM, a video and bad files."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from thyroid_studio import cli
from thyroid_studio.engine.datasets.layouts import read_mask
from thyroid_studio.engine.inference import batch
from thyroid_studio.engine.inference.segmenter import PostProcess, Segmenter
from thyroid_studio.engine.models.architectures import build_model
from thyroid_studio.engine.models.checkpoint import ModelMeta, save_checkpoint

REAL = ("1.png", "10004.png", "20005.png")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    meta = ModelMeta("trfe-a", 4, input_size=(64, 64), name="trfe-tiny", threshold=0.45)
    return save_checkpoint(tmp_path_factory.mktemp("model") / "tiny.pt", build_model("trfe-a", 4), meta)


@pytest.fixture
def inputs(tmp_path, shared_data) -> Path:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    for name in REAL[:2]:
        shutil.copy(shared_data / "ddti" / "image" / name, folder / name)
    shutil.copy(shared_data / "ddti" / "image" / REAL[2], folder / "sub" / REAL[2])
    (folder / "scan.png").write_bytes(np.random.default_rng(0).integers(0, 256, 500, dtype=np.uint8).tobytes())
    (folder / "notes.txt").write_text("not an image")
    return folder


def listing(folder: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in folder.rglob("*")}


def test_segment_folder(tmp_path, inputs, checkpoint, capsys):
    before = listing(inputs)
    out = tmp_path / "out"
    status = cli.main(["segment", str(inputs), "--out", str(out), "--model", str(checkpoint), "--device", "cpu",
                       "--overlay", "--batch-size", "2"])
    assert status == 1
    err_lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("skipped")]
    assert err_lines == ["skipped scan.png: not a readable image (not a PNG, JPEG, BMP or TIFF file, or its header is damaged)"]
    assert listing(inputs) == before
    for name, mask in (("1", out / "1.png"), ("10004", out / "10004.png"), ("20005", out / "sub" / "20005.png")):
        pixels = cv2.imread(str(mask), cv2.IMREAD_UNCHANGED)
        source = cv2.imread(str(next(inputs.rglob(f"{name}.png"))), cv2.IMREAD_GRAYSCALE)
        assert pixels.shape == source.shape and set(np.unique(pixels)) <= {0, 255}
        overlay = cv2.imread(str(mask.with_name(f"{name}_overlay.png")))
        assert overlay.shape == (*source.shape, 3)
    rows = list(csv.DictReader((out / "segmentation.csv").open()))
    assert sorted(Path(r["file"]).name for r in rows) == sorted(REAL)
    assert {r["model"] for r in rows} == {"trfe-tiny"}
    assert all(r["nodule_area_mm2"] == "" for r in rows)  # PNG frames carry no spacing
    row = next(r for r in rows if Path(r["file"]).name == "1.png")
    mask = read_mask(out / "1.png")
    assert int(row["nodule_area_px"]) == mask.sum() and row["mask"] == "1.png"
    assert not list(out.glob("*.partial")) and not list(out.rglob(".*tmp*"))


def test_masks_match_the_segmenter(tmp_path, inputs, checkpoint):
    out = tmp_path / "out"
    cli.main(["segment", str(inputs / "1.png"), "--out", str(out), "--model", str(checkpoint), "--device", "cpu",
              "--largest", "--fill-holes", "--threshold", "0.5"])
    segmenter = Segmenter.from_checkpoint(checkpoint, device="cpu", threshold=0.5,
                                          postprocess=PostProcess(largest_only=True, fill_holes=True))
    expected = segmenter(cv2.imread(str(inputs / "1.png"), cv2.IMREAD_GRAYSCALE)).nodule_mask
    assert (read_mask(out / "1.png") == expected).all()


def test_refuses_out_inside_input(tmp_path, inputs, checkpoint, capsys):
    before = listing(inputs)
    for out in (inputs, inputs / "masks", inputs / "sub"):
        assert cli.main(["segment", str(inputs), "--out", str(out), "--model", str(checkpoint)]) == 2
        assert "inside the input folder" in capsys.readouterr().err
    assert cli.main(["segment", str(inputs / "1.png"), "--out", str(inputs), "--model", str(checkpoint)]) == 2
    # An output folder that contains the input folder could receive mirrored sub-folders inside it.
    assert cli.main(["segment", str(inputs), "--out", str(inputs.parent), "--model", str(checkpoint)]) == 2
    assert "contains the input folder" in capsys.readouterr().err
    assert listing(inputs) == before


def test_missing_model_is_a_clear_error(tmp_path, inputs, capsys):
    assert cli.main(["segment", str(inputs), "--out", str(tmp_path / "o"), "--model", str(tmp_path / "no.pt")]) == 2
    assert "no model" in capsys.readouterr().err


def write_dicom(path: Path, frames: np.ndarray) -> None:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, UltrasoundMultiFrameImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UltrasoundMultiFrameImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "US"
    ds.NumberOfFrames, ds.Rows, ds.Columns = frames.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelSpacing = [0.1, 0.1]
    ds.PixelData = frames.tobytes()
    ds.save_as(path, enforce_file_format=True)


def test_dicom_and_video_give_one_mask_per_frame(tmp_path, shared_data, checkpoint):
    source = cv2.imread(str(shared_data / "ddti" / "image" / "1.png"), cv2.IMREAD_GRAYSCALE)[:96, :128]
    folder = tmp_path / "in"
    folder.mkdir()
    write_dicom(folder / "cine.dcm", np.stack([source, np.flipud(source), source]))
    video = cv2.VideoWriter(str(folder / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (128, 96))
    for _ in range(4):
        video.write(cv2.cvtColor(source, cv2.COLOR_GRAY2BGR))
    video.release()
    out = tmp_path / "out"
    assert cli.main(["segment", str(folder), "--out", str(out), "--model", str(checkpoint), "--device", "cpu"]) == 0
    names = sorted(p.name for p in out.glob("*.png"))
    assert names == [f"cine_f{i:04d}.png" for i in range(3)] + [f"clip_f{i:04d}.png" for i in range(4)]
    rows = list(csv.DictReader((out / "segmentation.csv").open()))
    dicom_rows = [r for r in rows if r["file"].endswith("cine.dcm")]
    assert [r["frame"] for r in dicom_rows] == ["0", "1", "2"]
    assert all(r["nodule_area_mm2"] != "" or r["nodule_area_px"] == "0" for r in dicom_rows)


def test_engine_api_cancel_and_progress(tmp_path, inputs, checkpoint):
    segmenter = Segmenter.from_checkpoint(checkpoint, device="cpu")
    seen, failures = [], []
    report = batch.segment_paths([inputs], tmp_path / "out", segmenter, batch.BatchOptions(batch_size=1),
                                 progress=lambda done, total: seen.append((done, total)),
                                 should_stop=lambda: len(seen) >= 1, on_failure=lambda p, m: failures.append(p))
    assert report.cancelled and report.frames == 1 and seen[0][1] == 4
    rows = list(csv.DictReader((tmp_path / "out" / "segmentation.csv").open()))
    assert len(rows) == 1


def test_segment_writes_the_gland_and_takes_flip_tta(tmp_path, inputs, checkpoint):
    out = tmp_path / "out"
    status = cli.main(["segment", str(inputs / "1.png"), "--out", str(out), "--model", str(checkpoint), "--device", "cpu",
                       "--gland", "--tta"])
    assert status == 0
    gland = cv2.imread(str(out / "1_gland.png"), cv2.IMREAD_UNCHANGED)
    frame = cv2.imread(str(inputs / "1.png"), cv2.IMREAD_GRAYSCALE)
    assert gland.shape == frame.shape and set(np.unique(gland)) <= {0, 255}
    expected = Segmenter.from_checkpoint(checkpoint, device="cpu", flip_tta=True)(frame)
    assert np.array_equal(gland > 0, expected.gland_mask)
    assert np.array_equal(read_mask(out / "1.png"), expected.nodule_mask)
    (row,) = csv.DictReader((out / "segmentation.csv").open())
    assert float(row["gland_share"]) == pytest.approx(expected.gland_share, abs=1e-4)


def test_segment_gland_needs_a_gland_head(tmp_path, inputs, capsys):
    unet = save_checkpoint(tmp_path / "unet.pt", build_model("unet", 4), ModelMeta("unet", 4, input_size=(64, 64)))
    assert cli.main(["segment", str(inputs / "1.png"), "--out", str(tmp_path / "out"), "--model", str(unet),
                     "--device", "cpu", "--gland"]) == 2
    assert "needs a model with a gland head" in capsys.readouterr().err


def test_network_threads_leave_a_core(monkeypatch):
    from thyroid_studio.engine.inference import segmenter as inference

    for cores, threads in ((1, 1), (2, 1), (16, 15), (None, 1)):
        monkeypatch.setattr(inference.os, "cpu_count", lambda cores=cores: cores)
        assert inference.network_threads() == threads


def test_the_csv_gives_the_lobe_extents_in_pixels_and_millimetres():
    from thyroid_studio.engine.calibration import Calibration
    from thyroid_studio.engine.inference.segmenter import Segmentation
    from thyroid_studio.engine.io.frames import Frame

    nodule = np.zeros((60, 80), bool)
    nodule[20:30, 20:30] = True
    gland = np.zeros((60, 80), bool)
    gland[10:50, 5:45] = True
    gland[5:55, 60:78] = True  # the other lobe: not the one holding the nodule
    result = Segmentation(nodule.astype(np.float32), nodule, gland.astype(np.float32), gland, gland_share=0.4)
    frame = Frame(np.zeros((60, 80), np.uint8), Path("us.png"), calibration=Calibration((0.2, 0.1)))
    cells = batch.lobe_cells(frame, result)
    assert cells == {"lobe_ap_px": "40", "lobe_ap_mm": "8.00", "lobe_width_px": "40", "lobe_width_mm": "4.00"}
    whole = Segmentation(nodule.astype(np.float32), nodule, gland.astype(np.float32), gland, gland_share=0.95)
    assert set(batch.lobe_cells(frame, whole).values()) == {""}
    assert {"lobe_ap_mm", "lobe_width_mm"} <= set(batch.CSV_COLUMNS)
