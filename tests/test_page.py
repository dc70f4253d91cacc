"""Report pages (Qt-free): the page content in millimetres with predicted and user findings, and without findings
heads (the PDF: test_report_pdf.py; `thyroid-studio report`: test_cli_report.py)."""
from __future__ import annotations

import numpy as np

from thyroid_studio.engine.findings.fields import Findings
from thyroid_studio.engine.inference.segmenter import Segmentation
from thyroid_studio.engine.models.checkpoint import ModelMeta
from thyroid_studio.engine.models.roles import ROLES
from thyroid_studio.engine.reports.page import DISCLAIMER, build_page

from report_pages import META, predicted, synthetic


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


def test_the_report_states_the_lobe_that_holds_the_nodule_and_says_it_is_the_models_outline():
    frame, segmentation = synthetic(predicted())
    page = build_page(frame, segmentation, meta=META)
    lobe = next(t for t in page.tables if t.title == "Thyroid lobe")
    rows = dict(lobe.rows)
    assert rows["Lobe antero-posterior"].startswith("8.0 mm") and rows["Lobe width (horizontal)"].startswith("10.0 mm")
    assert "not a measurement by a person" in lobe.note
    whole = Segmentation(segmentation.nodule_prob, segmentation.nodule_mask, segmentation.gland_prob,
                         segmentation.gland_mask, gland_share=0.97)
    assert all(t.title != "Thyroid lobe" for t in build_page(frame, whole, meta=META).tables)  # no lobe: no table
