"""Findings.with_defaults (the user's findings over the network's) and the field titles."""
from __future__ import annotations

from thyroid_studio.engine.findings.fields import FIELDS, TITLES, Findings


def test_known_fields_win_and_unknown_ones_are_filled():
    user = Findings({"margins": "spiculated"})
    model = Findings({"margins": "well-defined", "composition": "solid"})
    merged = user.with_defaults(model)
    assert merged.values == {"margins": "spiculated", "composition": "solid"}
    assert Findings().with_defaults(model) == model and user.with_defaults(Findings()) == user


def test_every_field_has_a_title():
    assert set(TITLES) == set(FIELDS)
