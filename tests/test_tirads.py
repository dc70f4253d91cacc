"""ACR TI-RADS against the chart of Tessler et al. (JACR 2017): every option's points, the level
boundaries, the spongiform and echogenic-foci rules, worked examples, the DDTI mapping, unknown inputs."""
from __future__ import annotations

import pytest

from thyroid_studio.engine.datasets.layouts import read_mask
from thyroid_studio.engine.findings.fields import FIELDS, Findings, read_labels
from thyroid_studio.engine.findings.shape import Shape, shape_of
from thyroid_studio.engine.findings.tirads import (ACR_POINTS, CATEGORIES, FINDINGS, FROM_DDTI, MASK, acr_choices,
                                                   level_of, score, score_choices)

# The ACR chart, written out by hand (category, option, points): the table must say exactly this.
CHART = [
    ("composition", "cystic or almost completely cystic", 0),
    ("composition", "spongiform", 0),
    ("composition", "mixed cystic and solid", 1),
    ("composition", "solid or almost completely solid", 2),
    ("echogenicity", "anechoic", 0),
    ("echogenicity", "hyperechoic or isoechoic", 1),
    ("echogenicity", "hypoechoic", 2),
    ("echogenicity", "very hypoechoic", 3),
    ("shape", "wider-than-tall", 0),
    ("shape", "taller-than-wide", 3),
    ("margin", "smooth", 0),
    ("margin", "ill-defined", 0),
    ("margin", "lobulated or irregular", 2),
    ("margin", "extra-thyroidal extension", 3),
    ("echogenic foci", "none or large comet-tail artifacts", 0),
    ("echogenic foci", "macrocalcifications", 1),
    ("echogenic foci", "peripheral (rim) calcifications", 2),
    ("echogenic foci", "punctate echogenic foci", 3),
]


def test_the_table_is_the_chart():
    assert {(c, o, p) for c, options in ACR_POINTS.items() for o, p in options.items()} == set(CHART)
    assert CATEGORIES == ("composition", "echogenicity", "shape", "margin", "echogenic foci")


@pytest.mark.parametrize("category,option,points", CHART)
def test_each_option_scores_its_points_alone(category, option, points):
    result = score_choices({category: option})
    assert result.points[category] == points
    expected = 0 if option == "spongiform" else points
    assert result.total == expected
    assert result.unknown == (() if option == "spongiform" else tuple(c for c in CATEGORIES if c != category))


@pytest.mark.parametrize("points,level", [(0, "TR1"), (1, "TR1"), (2, "TR2"), (3, "TR3"), (4, "TR4"), (5, "TR4"),
                                          (6, "TR4"), (7, "TR5"), (8, "TR5"), (17, "TR5")])
def test_level_boundaries(points, level):
    assert level_of(points).name == level


def test_a_negative_total_is_an_error():
    with pytest.raises(ValueError):
        level_of(-1)


def full(composition, echogenicity, shape, margin, foci):
    return score_choices({"composition": composition, "echogenicity": echogenicity, "shape": shape,
                          "margin": margin, "echogenic foci": foci})


# Worked examples, summed by hand from the chart.
@pytest.mark.parametrize("choices,total,level", [
    (("cystic or almost completely cystic", "anechoic", "wider-than-tall", "smooth", "none or large comet-tail artifacts"), 0, "TR1"),
    (("mixed cystic and solid", "hyperechoic or isoechoic", "wider-than-tall", "smooth", "none or large comet-tail artifacts"), 2, "TR2"),
    (("mixed cystic and solid", "hyperechoic or isoechoic", "wider-than-tall", "ill-defined", "macrocalcifications"), 3, "TR3"),
    (("solid or almost completely solid", "hypoechoic", "wider-than-tall", "smooth", "none or large comet-tail artifacts"), 4, "TR4"),
    (("solid or almost completely solid", "hyperechoic or isoechoic", "wider-than-tall", "smooth", "peripheral (rim) calcifications"), 5, "TR4"),
    (("solid or almost completely solid", "hypoechoic", "wider-than-tall", "lobulated or irregular", "none or large comet-tail artifacts"), 6, "TR4"),
    (("solid or almost completely solid", "hypoechoic", "wider-than-tall", "smooth", "punctate echogenic foci"), 7, "TR5"),
    (("solid or almost completely solid", "very hypoechoic", "taller-than-wide", "extra-thyroidal extension", "punctate echogenic foci"), 14, "TR5"),
])
def test_worked_examples(choices, total, level):
    result = full(*choices)
    assert (result.total, result.level.name, result.unknown) == (total, level, ())
    assert result.highest_level == result.level


def test_echogenic_foci_add_up_and_only_they_may_be_several():
    result = score_choices({"echogenic foci": ["macrocalcifications", "punctate echogenic foci"]})
    assert result.points["echogenic foci"] == 4
    with pytest.raises(ValueError, match="choose one"):
        score_choices({"margin": ["smooth", "lobulated or irregular"]})


def test_spongiform_takes_no_further_points():
    result = full("spongiform", "very hypoechoic", "taller-than-wide", "lobulated or irregular", "punctate echogenic foci")
    assert result.spongiform and result.total == 0 and result.level.name == "TR1"
    assert score_choices({"composition": "spongiform"}).highest_level.name == "TR1"


def test_unknown_names_are_errors():
    with pytest.raises(ValueError, match="not one of"):
        score_choices({"margin": "wavy"})
    with pytest.raises(ValueError, match="unknown ACR category"):
        score_choices({"vascularity": "none"})


def test_unknown_inputs_are_listed_and_bound_the_level():
    result = score_choices({"composition": "solid or almost completely solid", "echogenicity": "hypoechoic"})
    assert result.total == 4 and result.level.name == "TR4"
    assert result.unknown == ("shape", "margin", "echogenic foci")
    assert result.highest_total == 4 + 3 + 3 + (1 + 2 + 3)
    assert result.highest_level.name == "TR5"


def test_every_ddti_descriptor_maps_onto_the_chart():
    for name, (category, mapping) in FROM_DDTI.items():
        assert set(mapping) == set(FIELDS[name]), name
        assert set(mapping.values()) <= set(ACR_POINTS[category]), name
    assert set(FROM_DDTI) == set(FIELDS) - {"tirads"}  # the Kwak category is an output, not an input


def test_ddti_approximations():
    findings = Findings({"composition": "predominantly-solid", "echogenicity": "marked-hypoechogenicity",
                         "margins": "microlobulated", "calcifications": "microcalcification", "tirads": "5"})
    assert acr_choices(findings) == {"composition": "mixed cystic and solid", "echogenicity": "very hypoechoic",
                                     "margin": "lobulated or irregular", "echogenic foci": "punctate echogenic foci"}


def test_shape_comes_from_the_mask_and_margin_from_the_findings_first():
    findings = Findings({"composition": "solid", "echogenicity": "hypoechogenicity", "margins": "well-defined",
                         "calcifications": "non"})
    tall_irregular = Shape(taller_than_wide=True, solidity=0.5, components=1)
    result = score(findings, tall_irregular)
    assert result.choices["shape"] == ("taller-than-wide",) and result.choices["margin"] == ("smooth",)
    assert result.total == 2 + 2 + 3 + 0 + 0 and result.level.name == "TR5"
    assert result.sources == {"composition": FINDINGS, "echogenicity": FINDINGS, "margin": FINDINGS,
                              "echogenic foci": FINDINGS, "shape": MASK}


def test_margin_from_the_mask_when_the_findings_lack_it():
    findings = Findings({"composition": "solid"})
    irregular = score(findings, Shape(taller_than_wide=False, solidity=0.8, components=1))
    assert irregular.choices["margin"] == ("lobulated or irregular",) and irregular.sources["margin"] == MASK
    assert irregular.total == 2 + 0 + 2
    smooth = score(findings, Shape(taller_than_wide=False, solidity=0.99, components=1))
    assert smooth.points["margin"] == 0 and smooth.unknown == ("echogenicity", "echogenic foci")


def test_without_a_mask_shape_is_unknown():
    result = score(Findings({"composition": "cystic"}))
    assert result.unknown == ("echogenicity", "shape", "margin", "echogenic foci")


def test_a_real_ddti_frame(shared_data):
    # Frame 3: solid (2), hyperechogenicity (1), spiculated (2), microcalcification (3) = 8, + 3 if taller than wide.
    findings = read_labels(shared_data / "ddti" / "labels.csv")["3"]
    shape = shape_of(read_mask(shared_data / "ddti" / "mask" / "3.png"))
    result = score(findings, shape)
    assert result.total == 8 + (3 if shape.taller_than_wide else 0)
    assert result.level.name == "TR5" and result.unknown == ()
