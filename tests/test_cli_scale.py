"""`segment --scale` and `report --scale`: millimetres for frames without a calibration of their own, from
the burnt-in ruler (auto) or the number given; the CSV and the report say where each frame's came from."""
from __future__ import annotations

import csv
from pathlib import Path

import cv2
import pypdfium2 as pdfium
import pytest
import torch

from thyroid_studio import cli
from thyroid_studio.engine.models.architectures import build_model
from thyroid_studio.engine.models.checkpoint import ModelMeta, save_checkpoint

from frame_files import write_dicom
from ruler_frames import draw_ticks, speckle_frame


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    meta = ModelMeta("trfe-a", 4, input_size=(64, 64), name="trfe-tiny", threshold=0.45)
    return save_checkpoint(tmp_path_factory.mktemp("model") / "tiny.pt", build_model("trfe-a", 4), meta)


@pytest.fixture
def inputs(tmp_path) -> Path:
    """ruler.png (ticks 50 px apart: 0.2 mm/px), plain.png (no ruler), scan.dcm (PixelSpacing 0.1 mm)."""
    folder = tmp_path / "in"
    folder.mkdir()
    ruled = speckle_frame()
    draw_ticks(ruled, 50.0, 7)
    assert cv2.imwrite(str(folder / "ruler.png"), ruled)
    assert cv2.imwrite(str(folder / "plain.png"), speckle_frame(seed=4))
    write_dicom(folder / "scan.dcm", speckle_frame(seed=5), PixelSpacing=[0.1, 0.1])
    return folder


def rows_by_name(out: Path) -> dict[str, dict[str, str]]:
    with open(out / "segmentation.csv", newline="", encoding="utf-8") as handle:
        return {Path(row["file"]).stem: row for row in csv.DictReader(handle)}


def test_segment_scale_auto_reads_the_ruler_and_keeps_the_dicoms(tmp_path, inputs, checkpoint, capsys):
    out = tmp_path / "out"
    assert cli.main(["segment", str(inputs), "--out", str(out), "--model", str(checkpoint), "--device", "cpu",
                     "--scale", "auto"]) == 0
    rows = rows_by_name(out)
    assert [rows[n]["scale_source"] for n in ("ruler", "plain", "scan")] == ["ruler", "", "dicom"]
    assert float(rows["ruler"]["mm_per_px_row"]) == pytest.approx(0.2, rel=0.005)
    assert rows["plain"]["mm_per_px_row"] == "" and rows["scan"]["mm_per_px_col"] == "0.10000"
    assert "millimetres: 1 frame(s) from dicom, 1 frame(s) from no calibration (pixels only), 1 frame(s) from ruler" \
        in capsys.readouterr().err


def test_segment_scale_number_fills_only_frames_without_one_and_no_option_leaves_pixels(tmp_path, inputs, checkpoint):
    assert cli.main(["segment", str(inputs), "--out", str(tmp_path / "a"), "--model", str(checkpoint), "--device",
                     "cpu", "--scale", "0.3"]) == 0
    rows = rows_by_name(tmp_path / "a")
    assert [rows[n]["scale_source"] for n in ("ruler", "plain", "scan")] == ["option", "option", "dicom"]
    assert rows["plain"]["mm_per_px_row"] == "0.30000"
    area_px = int(rows["plain"]["nodule_area_px"])
    assert rows["plain"]["nodule_area_mm2"] == ("" if area_px == 0 else f"{area_px * 0.09:.2f}")
    assert cli.main(["segment", str(inputs), "--out", str(tmp_path / "b"), "--model", str(checkpoint), "--device",
                     "cpu"]) == 0
    assert [r["scale_source"] for r in rows_by_name(tmp_path / "b").values()].count("") == 2  # the PNGs: pixels


@pytest.mark.parametrize("bad", ["0", "-1", "nan", "12", "0.0001", "autoo"])
def test_a_bad_scale_is_a_usage_error(tmp_path, inputs, checkpoint, capsys, bad):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["segment", str(inputs), "--out", str(tmp_path / "out"), "--scale", bad])
    assert exit_.value.code == 2
    assert f"argument --scale: must be 'auto' or millimetres per pixel from 0.001 to 10, got '{bad}'" \
        in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_report_scale_auto_says_where_the_millimetres_came_from(tmp_path, inputs, checkpoint):
    out = tmp_path / "reports"
    assert cli.main(["report", str(inputs / "ruler.png"), str(inputs / "plain.png"), "--out", str(out),
                     "--model", str(checkpoint), "--device", "cpu", "--scale", "auto"]) == 0

    def text(name: str) -> str:
        pdf = pdfium.PdfDocument(str(out / f"{name}.pdf"))
        return " ".join(pdf[0].get_textpage().get_text_range().split())

    assert "Millimetres: 0.2 mm/px from the depth ruler's tick marks." in text("ruler")
    assert "No calibration holds for it: pixels only." in text("plain")
