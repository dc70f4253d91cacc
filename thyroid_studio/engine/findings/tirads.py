"""ACR TI-RADS: the points of each ultrasound finding, their sum and the TR level.

``ACR_POINTS`` is the chart of F. N. Tessler et al., "ACR Thyroid Imaging, Reporting and Data
System (TI-RADS): White Paper of the ACR TI-RADS Committee", J Am Coll Radiol 2017;14:587-595:
one option per category (echogenic foci: all that apply, their points added), the points
summed, the sum read against ``LEVELS``. Spongiform nodules take no further points.

``FROM_DDTI`` maps the DDTI vocabulary of ``findings.FIELDS`` onto the chart's options; where
the two vocabularies do not say the same thing the mapping is an approximation, listed in
``docs/tirads.md``. The shape comes from the mask (``engine/findings/shape.py``): taller-than-wide, and
the margin when no finding gives one.

A category whose input is unknown scores no points and is listed in ``TiradsScore.unknown``;
``TiradsScore.highest_level`` says how far the level could rise if it were known.
"""
from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from .fields import Findings
from .shape import Shape

ACR_POINTS: dict[str, dict[str, int]] = {
    "composition": {"cystic or almost completely cystic": 0, "spongiform": 0, "mixed cystic and solid": 1,
                    "solid or almost completely solid": 2},
    "echogenicity": {"anechoic": 0, "hyperechoic or isoechoic": 1, "hypoechoic": 2, "very hypoechoic": 3},
    "shape": {"wider-than-tall": 0, "taller-than-wide": 3},
    "margin": {"smooth": 0, "ill-defined": 0, "lobulated or irregular": 2, "extra-thyroidal extension": 3},
    "echogenic foci": {"none or large comet-tail artifacts": 0, "macrocalcifications": 1,
                       "peripheral (rim) calcifications": 2, "punctate echogenic foci": 3},
}
CATEGORIES: tuple[str, ...] = tuple(ACR_POINTS)
SEVERAL_ALLOWED = "echogenic foci"  # the one category where all options that apply are scored
NO_FURTHER_POINTS = ("composition", "spongiform")  # the chart: spongiform nodules take no points elsewhere


@dataclass(frozen=True)
class Level:
    name: str  # "TR1".."TR5"
    title: str
    min_points: int


# The chart lists TR1 at 0 points and TR2 at 2; a total of 1 (possible, e.g. cystic + macrocalcification)
# is below TR2, so it reads as TR1 here -- a convention, stated in docs/tirads.md.
LEVELS: tuple[Level, ...] = (
    Level("TR1", "benign", 0),
    Level("TR2", "not suspicious", 2),
    Level("TR3", "mildly suspicious", 3),
    Level("TR4", "moderately suspicious", 4),
    Level("TR5", "highly suspicious", 7),
)

# DDTI field -> (ACR category, {DDTI class: ACR option}); approximations are listed in docs/tirads.md.
FROM_DDTI: dict[str, tuple[str, dict[str, str]]] = {
    "composition": ("composition", {
        "cystic": "cystic or almost completely cystic",
        "predominantly-cystic": "mixed cystic and solid",
        "spongiform": "spongiform",
        "predominantly-solid": "mixed cystic and solid",
        "solid": "solid or almost completely solid",
    }),
    "echogenicity": ("echogenicity", {
        "hyperechogenicity": "hyperechoic or isoechoic",
        "isoechogenicity": "hyperechoic or isoechoic",
        "hypoechogenicity": "hypoechoic",
        "marked-hypoechogenicity": "very hypoechoic",
    }),
    "margins": ("margin", {
        "well-defined": "smooth",
        "ill-defined": "ill-defined",
        "macrolobulated": "lobulated or irregular",
        "microlobulated": "lobulated or irregular",
        "spiculated": "lobulated or irregular",
    }),
    "calcifications": ("echogenic foci", {
        "non": "none or large comet-tail artifacts",
        "macrocalcification": "macrocalcifications",
        "microcalcification": "punctate echogenic foci",
    }),
}
FROM_SHAPE = {True: "taller-than-wide", False: "wider-than-tall"}  # Shape.taller_than_wide -> shape option
FROM_MARGIN_SHAPE = {True: "lobulated or irregular", False: "smooth"}  # Shape.irregular -> margin option

FINDINGS, MASK = "findings", "mask"  # where a category's input came from


def level_of(points: int) -> Level:
    """The TR level of a point total (0 -> TR1, 2 -> TR2, 3 -> TR3, 4-6 -> TR4, 7+ -> TR5)."""
    if points < 0:
        raise ValueError(f"a point total cannot be negative, got {points}")
    return [level for level in LEVELS if points >= level.min_points][-1]


def _options(category: str, value: str | Collection[str]) -> tuple[str, ...]:
    options = (value,) if isinstance(value, str) else tuple(value)
    if category not in ACR_POINTS:
        raise ValueError(f"unknown ACR category {category!r}; known: {', '.join(CATEGORIES)}")
    if len(options) != 1 and category != SEVERAL_ALLOWED:
        raise ValueError(f"{category}: choose one option, got {len(options)}")
    for option in options:
        if option not in ACR_POINTS[category]:
            raise ValueError(f"{category}: {option!r} is not one of: {', '.join(ACR_POINTS[category])}")
    return options


@dataclass(frozen=True)
class TiradsScore:
    """Points per category (None: unknown), their total and TR level, and where each input came from."""

    choices: Mapping[str, tuple[str, ...] | None]  # category -> chosen ACR option(s); None: unknown
    points: Mapping[str, int | None]
    sources: Mapping[str, str | None] = field(default_factory=dict)  # category -> FINDINGS | MASK
    spongiform: bool = False  # the chart's rule applied: no points outside composition

    @property
    def total(self) -> int:
        """Sum of the known categories' points."""
        return sum(p for p in self.points.values() if p is not None)

    @property
    def level(self) -> Level:
        return level_of(self.total)

    @property
    def unknown(self) -> tuple[str, ...]:
        return tuple(c for c in CATEGORIES if self.points.get(c) is None)

    @property
    def highest_total(self) -> int:
        """The total if every unknown category took its highest points (all options, for echogenic foci)."""
        def most(category: str) -> int:
            values = ACR_POINTS[category].values()
            return sum(values) if category == SEVERAL_ALLOWED else max(values)

        return self.total + sum(most(c) for c in self.unknown)

    @property
    def highest_level(self) -> Level:
        return level_of(self.highest_total)


def score_choices(choices: Mapping[str, str | Collection[str] | None],
                  sources: Mapping[str, str | None] | None = None) -> TiradsScore:
    """Score ACR options directly: category -> option (several for echogenic foci), None or absent: unknown."""
    for category in choices:
        if category not in ACR_POINTS:
            raise ValueError(f"unknown ACR category {category!r}; known: {', '.join(CATEGORIES)}")
    chosen = {c: None if choices.get(c) is None else _options(c, choices[c]) for c in CATEGORIES}
    category, option = NO_FURTHER_POINTS
    spongiform = chosen[category] == (option,)
    points = {
        c: (0 if spongiform else None) if options is None
        else (0 if spongiform and c != category else sum(ACR_POINTS[c][o] for o in options))
        for c, options in chosen.items()
    }
    return TiradsScore(chosen, points, dict(sources or {}), spongiform)


def acr_choices(findings: Findings) -> dict[str, str]:
    """The ACR options of the known DDTI descriptors (``FROM_DDTI``); the TI-RADS category itself is not an input."""
    out = {}
    for name, (category, mapping) in FROM_DDTI.items():
        value = findings.get(name)
        if value is not None:
            out[category] = mapping[value]
    return out


def score(findings: Findings, shape: Shape | None = None) -> TiradsScore:
    """ACR TI-RADS from the findings (the user's, the network's, or both merged) and the mask's shape.

    Shape is the mask's taller-than-wide; the margin is the findings' when known, else the mask's
    solidity (``Shape.irregular``). With no mask (``shape`` None) both are only what the findings say.
    """
    choices: dict[str, str | None] = dict(acr_choices(findings))
    sources = {c: FINDINGS for c in choices}
    if shape is not None:
        choices["shape"], sources["shape"] = FROM_SHAPE[shape.taller_than_wide], MASK
        if "margin" not in choices:
            choices["margin"], sources["margin"] = FROM_MARGIN_SHAPE[shape.irregular], MASK
    return score_choices(choices, sources)
