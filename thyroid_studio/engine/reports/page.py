"""What a nodule report says, assembled without Qt: one page per frame.

A page holds the frame with its contours (colours from ``roles.ROLES``), the measurements
(millimetres where the frame has a pixel spacing), the findings -- the user's where set,
else the network's, each with the network's probability --, the ACR TI-RADS points and TR
level, the model's name and version, the date, and "For research, not diagnosis". Every
cell is already text, so a renderer only lays it out: ``thyroid_studio/report_pdf.py``
(Qt's PDF writer) draws it for ``thyroid-studio report`` and for the app's File > Export report.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

import numpy as np

from .. import geometry
from ..calibration import Calibration
from ..findings.fields import FIELDS, TITLES, Findings, PredictedFindings, merged
from ..findings.shape import IRREGULAR_BELOW, Shape, shape_of
from ..findings.tirads import CATEGORIES, FINDINGS, FROM_DDTI, TiradsScore, score
from ..inference.overlay import overlay
from ..inference.segmenter import Segmentation
from ..io.frames import Frame
from ..models.architectures import arch_spec
from ..models.checkpoint import ModelMeta
from ..models.roles import MODEL_ROLES, RGB, ROLES, Role

DISCLAIMER = "For research, not diagnosis."
UNKNOWN = "unknown"
LABEL_ROLE, GLAND_ROLE = "label", "gland"  # keys of roles.ROLES drawn besides the model's nodule


@dataclass(frozen=True)
class Table:
    """A titled table of text cells, with an optional note under it."""

    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    note: str = ""


@dataclass(frozen=True)
class ReportPage:
    """One frame's report."""

    title: str  # the frame's name
    source: str  # the file, and the frame's place in it
    image: np.ndarray  # (H, W, 3) uint8 RGB: the frame with its contours
    legend: tuple[tuple[str, RGB], ...]  # (what a contour is, its colour)
    tables: tuple[Table, ...]
    model: str  # name and version, or why there is none
    created: str  # date and time the report was made
    disclaimer: str = DISCLAIMER


def model_role(meta: ModelMeta) -> Role:
    """The contour role whose colour a model's nodule takes (the first model role that fits its architecture)."""
    spec = arch_spec(meta.arch)
    return next((ROLES[key] for key in MODEL_ROLES if ROLES[key].fits(spec)), ROLES[MODEL_ROLES[0]])


def model_text(meta: ModelMeta | None) -> str:
    if meta is None:
        return "none (contours and findings as given)"
    return f"{meta.name or meta.arch} version {meta.version} ({meta.arch}, width {meta.width}, {meta.encoder} encoder)"


def _length(px: float, mm: float | None) -> str:
    """``geometry.size_text`` with one decimal of pixels for every length, extents included."""
    return geometry.size_text(float(px), mm)


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


def measurements_table(mask: np.ndarray, spacing_mm: tuple[float, float] | None, shape: Shape | None, of: str,
                       calibration: Calibration | None = None) -> Table:
    """Size (all nodule pixels, as the Measurements panel and segment's CSV) and shape (largest component);
    the note says where the millimetres came from (``calibration``)."""
    m = geometry.measure(mask, spacing_mm)
    if spacing_mm:
        scale = f"Millimetres: {calibration.describe()}." if calibration else \
            "Millimetres from the frame's calibration."
    else:
        scale = "No calibration holds for it: pixels only."
    if m is None:
        return Table("Measurements", ("", ""), ((f"No nodule in {of}", ""),), scale)
    rows = [
        ("Area", geometry.size_text(m.area_px, m.area_mm2, "mm²")),
        ("Longest diameter", _length(m.longest_px, m.longest_mm)),
        ("Perpendicular diameter", _length(m.perpendicular_px, m.perpendicular_mm)),
        ("Height (antero-posterior)", _length(m.height_px, m.height_mm)),
        ("Width (horizontal)", _length(m.width_px, m.width_mm)),
    ]
    if shape is not None:
        margin = "lobulated or irregular" if shape.irregular else "smooth"
        rows += [("Taller than wide", _yes_no(shape.taller_than_wide)),
                 ("Margin solidity", f"{shape.solidity:.3f} ({margin}; cut {IRREGULAR_BELOW})")]
    notes = [f"Measured on {of}.", scale]
    if shape is not None and shape.components > 1:
        notes.append(f"{shape.components} components: sizes cover all, shape the largest.")
    return Table("Measurements", ("", "value"), tuple(rows), " ".join(notes))


def lobe_table(lobe: np.ndarray, frame: Frame) -> Table:
    """The lobe that holds the nodule, as the model outlined it (``Segmentation.lobe``): its extents."""
    size = geometry.measure(lobe, frame.spacing_for(lobe))
    rows = (("Lobe antero-posterior", _length(size.height_px, size.height_mm)),
            ("Lobe width (horizontal)", _length(size.width_px, size.width_mm)))
    return Table("Thyroid lobe", ("", "value"), rows,
                 "The model's gland outline (light blue), not a measurement by a person; transverse on a transverse scan.")


def findings_table(user: Findings, predicted: PredictedFindings | None) -> Table:
    """Each finding: the user's value where set, else the network's most probable class, with the network's probability."""
    rows = []
    if predicted is not None:
        rows.append(("Suspicious (TI-RADS 4a or above)", _yes_no(predicted.suspicious > 0.5), f"{predicted.suspicious:.2f}", "model"))
    for name in FIELDS:
        probs = predicted.probabilities.get(name, {}) if predicted is not None else {}
        value = user.get(name)
        source = "user"
        if value is None and probs:
            value, source = max(probs, key=probs.get), "model"
        if value is None:
            rows.append((TITLES[name], UNKNOWN, "", ""))
        else:
            rows.append((TITLES[name], value, f"{probs[value]:.2f}" if value in probs else "", source))
    note = "Probability: the model's for the value shown." if predicted is not None else "The model has no findings heads."
    return Table("Findings", ("finding", "value", "probability", "from"), tuple(rows), note)


def tirads_table(result: TiradsScore, user: Findings) -> Table:
    """ACR TI-RADS: each category's option, points and source (user, model or mask); the total and the level."""
    field_of = {category: name for name, (category, _) in FROM_DDTI.items()}
    rows = []
    for category in CATEGORIES:
        options, points, source = result.choices.get(category), result.points.get(category), result.sources.get(category)
        if source == FINDINGS:
            source = "user" if user.get(field_of[category]) is not None else "model"
        rows.append((category.capitalize(), " + ".join(options) if options else UNKNOWN,
                     "-" if points is None else str(points), source or ""))
    rows.append(("Total", "", str(result.total), ""))
    rows.append(("ACR TI-RADS level", f"{result.level.name} ({result.level.title})", "", ""))
    notes = []
    if result.spongiform:
        notes.append("Spongiform: no points for the other categories (ACR).")
    if result.unknown:
        notes.append(f"Unknown: {', '.join(result.unknown)}; with them the level could reach {result.highest_level.name}.")
    notes.append("DDTI descriptors mapped to ACR categories as in docs/tirads.md; ACR assesses shape on a transverse image.")
    return Table("ACR TI-RADS (Tessler et al., JACR 2017)", ("category", "finding", "points", "from"), tuple(rows), " ".join(notes))


def build_page(frame: Frame, segmentation: Segmentation | None = None, *, label: np.ndarray | None = None,
               findings: Findings | None = None, meta: ModelMeta | None = None,
               created: _dt.datetime | None = None) -> ReportPage:
    """The report page of one frame.

    The nodule measured and scored is ``label`` (the user's) when given, else the segmentation's
    mask; ``findings`` are the user's and take precedence over the network's predictions.
    """
    user = findings or Findings()
    predicted = segmentation.findings if segmentation is not None else None
    layers, legend = [], []
    if segmentation is not None and segmentation.informative_gland is not None:
        role = ROLES[GLAND_ROLE]
        layers.append((segmentation.informative_gland, role.colour, role.thickness))
        legend.append((role.title, role.colour))
    if label is not None:
        role = ROLES[LABEL_ROLE]
        layers.append((label, role.colour, role.thickness))
        legend.append((role.title, role.colour))
    if segmentation is not None:
        role = model_role(meta) if meta is not None else ROLES[MODEL_ROLES[0]]
        layers.append((segmentation.nodule_mask, role.colour, role.thickness))
        legend.append((f"{role.title}: {meta.name or meta.arch}" if meta else role.title, role.colour))
    mask = label if label is not None else segmentation.nodule_mask if segmentation is not None else None
    of = "the label" if label is not None else "the model's mask"
    tables = []
    shape = None
    if mask is not None:
        spacing = frame.spacing_for(mask)
        shape = shape_of(mask, spacing)
        tables.append(measurements_table(mask, spacing, shape, of, frame.calibration))
    lobe = segmentation.lobe(mask) if segmentation is not None else None
    if lobe is not None:
        tables.append(lobe_table(lobe, frame))
    tables.append(findings_table(user, predicted))
    tables.append(tirads_table(score(merged(user, predicted), shape), user))
    where = f"{frame.source}" if frame.count == 1 else f"{frame.source}, frame {frame.index + 1} of {frame.count}"
    return ReportPage(
        title=frame.name,
        source=where,
        image=overlay(frame.pixels, layers),
        legend=tuple(legend),
        tables=tuple(tables),
        model=model_text(meta),
        created=(created or _dt.datetime.now()).strftime("%Y-%m-%d %H:%M"),
    )
