"""Report pages drawn into a PDF, read back with pypdfium2: pages, text and contour colours; never partial."""
from __future__ import annotations

import pypdfium2 as pdfium

from thyroid_studio.engine.reports.page import build_page
from thyroid_studio.report_pdf import ensure_gui_application, write_report_pdf

from report_pages import META, pdf_text, predicted, synthetic


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
