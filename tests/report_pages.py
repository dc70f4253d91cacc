"""What the report tests draw: a tiny model's meta with findings heads, predicted findings, a synthetic frame at
0.1 mm/px with its segmentation; and the text of a PDF's pages, read back with pypdfium2."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pypdfium2 as pdfium

from thyroid_studio.engine.calibration import Calibration
from thyroid_studio.engine.findings.fields import FIELDS, PredictedFindings
from thyroid_studio.engine.inference.segmenter import Segmentation
from thyroid_studio.engine.io.frames import Frame
from thyroid_studio.engine.models.checkpoint import ModelMeta

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


def pdf_text(path: Path) -> list[str]:
    pdf = pdfium.PdfDocument(str(path))
    return [pdf[i].get_textpage().get_text_range() for i in range(len(pdf))]
