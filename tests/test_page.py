"""Reports: the page content (Qt-free), the PDF read back with pypdfium2 (pages, text, colours), and
`thyroid-studio report` on files, folders and a video, with its exit statuses."""
from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pypdfium2 as pdfium
import pytest
import torch

from thyroid_studio import cli
from thyroid_studio.engine.calibration import Calibration
from thyroid_studio.engine.findings.fields import FIELDS, Findings, PredictedFindings
from thyroid_studio.engine.inference.segmenter import Segmentation
from thyroid_studio.engine.io.frames import Frame
from thyroid_studio.engine.models.architectures import build_model
from thyroid_studio.engine.models.checkpoint import ModelMeta, save_checkpoint
from thyroid_studio.engine.models.roles import ROLES
from thyroid_studio.engine.reports.page import DISCLAIMER, build_page
from thyroid_studio.report_pdf import ensure_gui_application, write_report_pdf

META = ModelMeta("trfe-a", 4, findings={k: list(v) for k, v in FIELDS.items()}, name="tiny-trfe", version="7")


def predicted(suspicious: float = 0.8) -> PredictedFindings:
    """0.6 on solid, hypoechogenicity, well-defined, microcalcification and 4b; the rest spread evenly."""
    best = {"tirads": "4b", "composition": "solid", "echogenicity": "hypoechogenicity", "margins": "well-defined",
            "calcifications": "microcalcification"}
    return PredictedFindings(suspicious, {name: {c: 0.6 if c == best[name] else 0.4 / (len(classes) - 1) for c in classes}
                                          for name, classes in FIELDS.items()})


def synthetic(findings: PredictedFindings | None = None) -> tuple[Frame, Segmentation]:
    """A 100x120 frame at 0.1 mm/px with a 30-row x 20-column nodule (taller than wide) and a gland around it."""
    pixels = np.full((100, 120), 60, np.uint8)
    nodule = np.zeros((100, 120), bool)
    nodule[30:60, 40:60] = True
    gland = np.zeros((100, 120), bool)
    gland[10:90, 10:110] = True
    frame = Frame(pixels, Path("scan.dcm"), calibration=Calibration((0.1, 0.1)))
    return frame, Segmentation(nodule.astype(np.float32), nodule, gland.astype(np.float32), gland, findings)


def cells(page, title: str) -> dict[str, tuple[str, ...]]:
    table = next(t for t in page.tables if t.title.startswith(title))
    return {row[0]: row[1:] for row in table.rows}


def test_page_content_in_millimetres_with_predicted_and_user_findings():
    frame, result = synthetic(predicted())
    page = build_page(frame, result, findings=Findings({"margins": "spiculated"}), meta=META)
    size = cells(page, "Measurements")
    assert size["Area"] == ("6.0 mm² (600 px)",) and size["Height (antero-posterior)"] == ("3.0 mm (30.0 px)",)
    assert size["Taller than wide"] == ("yes",)
    found = cells(page, "Findings")
    assert found["Suspicious (TI-RADS 4a or above)"] == ("yes", "0.80", "model")
    assert found["Composition"] == ("solid", "0.60", "model")
    assert found["Margins"] == ("spiculated", "0.10", "user")  # the user's value, with the model's probability of it
    acr = cells(page, "ACR TI-RADS")
    # solid 2 + hypoechoic 2 + taller-than-wide 3 + lobulated/irregular (user) 2 + punctate 3 = 12
    assert acr["Margin"] == ("lobulated or irregular", "2", "user") and acr["Shape"] == ("taller-than-wide", "3", "mask")
    assert acr["Total"][1] == "12" and acr["ACR TI-RADS level"][0] == "TR5 (highly suspicious)"
    assert page.model == "tiny-trfe version 7 (trfe-a, width 4, plain encoder)" and page.disclaimer == DISCLAIMER
    assert [colour for _, colour in page.legend] == [ROLES["gland"].colour, ROLES["trfe"].colour]
    # The frame is gray; the nodule's outline is drawn in TRFE-Net's red, the gland's in its blue.
    assert tuple(page.image[30, 50]) == ROLES["trfe"].colour and tuple(page.image[10, 50]) == ROLES["gland"].colour
    assert tuple(page.image[45, 50]) == (60, 60, 60)


def test_page_without_findings_heads_scores_the_mask_alone():
    frame, with_gland = synthetic(None)
    result = Segmentation(with_gland.nodule_prob, with_gland.nodule_mask)  # a U-Net: no gland
    label = np.zeros((100, 120), bool)
    label[20:30, 20:60] = True  # wider than tall
    page = build_page(frame, result, label=label, meta=ModelMeta("unet", 4))
    assert cells(page, "Measurements")["Taller than wide"] == ("no",)
    assert next(t for t in page.tables if t.title == "Measurements").note.startswith("Measured on the label.")
    assert all(row[0] == "unknown" for row in cells(page, "Findings").values())
    acr = cells(page, "ACR TI-RADS")
    assert acr["Shape"] == ("wider-than-tall", "0", "mask") and acr["Margin"] == ("smooth", "0", "mask")
    assert acr["Composition"] == ("unknown", "-", "")
    assert "could reach TR5" in next(t for t in page.tables if t.title.startswith("ACR")).note
    assert [colour for _, colour in page.legend] == [ROLES["label"].colour, ROLES["unet"].colour]


def pdf_text(path: Path) -> list[str]:
    pdf = pdfium.PdfDocument(str(path))
    return [pdf[i].get_textpage().get_text_range() for i in range(len(pdf))]


def test_pdf_pages_text_and_contour_colours(tmp_path):
    ensure_gui_application()
    frame, result = synthetic(predicted(0.3))
    pages = [build_page(frame, result, meta=META), build_page(frame, synthetic(None)[1], meta=META)]
    path = write_report_pdf(tmp_path / "r.pdf", pages)
    texts = pdf_text(path)
    assert len(texts) == 2
    first = texts[0]
    for expected in ("Thyroid nodule report: scan", "tiny-trfe version 7", "For research, not diagnosis.",
                     "6.0 mm² (600 px)", "TR5 (highly suspicious)", "Page 1 of 2", "Created: "):
        assert expected in first, expected
    assert "The model has no findings heads." in texts[1] and "Page 2 of 2" in texts[1]
    image = pdfium.PdfDocument(str(path))[0].render(scale=2, rev_byteorder=True).to_numpy()[..., :3].astype(int)
    red = (image[..., 0] > 200) & (image[..., 1] < 60) & (image[..., 2] < 60)
    assert red.sum() > 3000  # the nodule outline in TRFE-Net's red (the legend's red square alone is ~170 pixels)
    assert [p.name for p in tmp_path.iterdir()] == ["r.pdf"]


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    meta = ModelMeta("trfe-a", 4, input_size=(64, 64), findings={k: list(v) for k, v in FIELDS.items()},
                     name="tiny-trfe", version="7", threshold=0.3)
    return save_checkpoint(tmp_path_factory.mktemp("m") / "tiny.pt", build_model("trfe-a", 4, findings=meta.findings), meta)


@pytest.fixture
def inputs(tmp_path, shared_data) -> Path:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(shared_data / "ddti" / "image" / "3.png", folder / "3.png")
    shutil.copy(shared_data / "ddti" / "image" / "10004.png", folder / "sub" / "10004.png")
    frame = cv2.imread(str(shared_data / "ddti" / "image" / "1.png"))[:96, :128]
    video = cv2.VideoWriter(str(folder / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (128, 96))
    for _ in range(5):
        video.write(frame)
    video.release()
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    return folder


def listing(folder: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in folder.rglob("*")}


def test_report_command(tmp_path, inputs, model, capsys):
    before = listing(inputs)
    out = tmp_path / "out"
    labels = tmp_path / "labels.csv"
    labels.write_text("id,tirads,composition\n3,2,spongiform\n")
    status = cli.main(["report", str(inputs), "--out", str(out), "--model", str(model), "--device", "cpu",
                       "--max-pages", "3", "--labels", str(labels)])
    assert status == 1
    captured = capsys.readouterr()
    assert "skipped" in captured.err and "broken.png" in captured.err
    assert "clip.avi: 5 frames; the report holds the first 3 (--max-pages)" in captured.err
    assert sorted(Path(line).relative_to(out).as_posix() for line in captured.out.split()) == \
        ["3.pdf", "clip.pdf", "sub/10004.pdf"]
    assert [len(pdf_text(out / name)) for name in ("3.pdf", "clip.pdf", "sub/10004.pdf")] == [1, 3, 1]
    text = pdf_text(out / "3.pdf")[0]
    assert "spongiform" in text and "TR1 (benign)" in text  # the user's label: spongiform takes no further points
    assert "clip.avi, frame 3 of 5" in pdf_text(out / "clip.pdf")[2]
    assert listing(inputs) == before
    assert not [p for p in out.rglob("*") if p.is_file() and p.suffix != ".pdf"]


def test_report_usage_errors(tmp_path, inputs, model, capsys):
    before = listing(inputs)
    assert cli.main(["report", str(inputs), "--out", str(inputs / "sub"), "--model", str(model)]) == 2
    assert "inside the input folder" in capsys.readouterr().err
    assert cli.main(["report", str(inputs), "--out", str(tmp_path / "o"), "--model", str(tmp_path / "none.pt")]) == 2
    assert "thyroid-studio report:" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["report", str(empty), "--out", str(tmp_path / "o"), "--model", str(model)]) == 2
    assert "no supported files" in capsys.readouterr().err
    assert listing(inputs) == before


def test_report_name_clash(tmp_path, inputs, model, capsys):
    shutil.copy(inputs / "3.png", inputs / "sub" / "x.png")
    cv2.imwrite(str(inputs / "sub" / "x.jpg"), cv2.imread(str(inputs / "3.png")))
    assert cli.main(["report", str(inputs / "sub" / "x.jpg"), str(inputs / "sub" / "x.png"), "--out",
                     str(tmp_path / "o"), "--model", str(model), "--device", "cpu"]) == 1
    assert "would overwrite another input's" in capsys.readouterr().err


def test_report_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["report", "--help"])
    assert exit_.value.code == 0 and "--max-pages" in capsys.readouterr().out
