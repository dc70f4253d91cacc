"""Findings on the command line: `segment`'s prediction, shape and ACR columns, `evaluate`'s
classification metrics from a labels.csv, with tiny random models with and without findings heads."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch

from thyroid_studio import cli
from thyroid_studio.engine.datasets.layouts import read_mask
from thyroid_studio.engine.findings.classification_metrics import roc_auc
from thyroid_studio.engine.findings.fields import FIELDS, Findings, read_labels, write_labels
from thyroid_studio.engine.findings.shape import shape_of
from thyroid_studio.engine.findings.tirads import score
from thyroid_studio.engine.inference.batch import FINDINGS_COLUMNS
from thyroid_studio.engine.inference.segmenter import Segmenter
from thyroid_studio.engine.io.frames import read_frame
from thyroid_studio.engine.models.architectures import build_model
from thyroid_studio.engine.models.checkpoint import ModelMeta, save_checkpoint

FRAMES = ("3", "15", "85", "86", "125", "10")  # labelled in DDTI: 3 (4b), 15 (4a), 85 (3), 86 (2), 125 (2); 10 is not
THRESHOLD = "0.3"


def tiny(folder: Path, findings: bool) -> Path:
    torch.manual_seed(0)
    vocabulary = {k: list(v) for k, v in FIELDS.items()} if findings else {}
    model = build_model("trfe-a", 4, in_channels=3, encoder="plain", findings=vocabulary or None)
    meta = ModelMeta("trfe-a", 4, input_size=(64, 64), findings=vocabulary, name="tiny", version="3")
    return save_checkpoint(folder / f"tiny-{'findings' if findings else 'plain'}.pt", model, meta)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[bool, Path]:
    folder = tmp_path_factory.mktemp("models")
    return {True: tiny(folder, True), False: tiny(folder, False)}


@pytest.fixture
def ddti(tmp_path, shared_data) -> Path:
    """A copy of a few DDTI frames, their masks, and labels.csv beside the mask folder (as in ../shared/data)."""
    root = tmp_path / "ddti"
    for kind in ("image", "mask"):
        (root / kind).mkdir(parents=True)
        for key in FRAMES:
            shutil.copy(shared_data / "ddti" / kind / f"{key}.png", root / kind / f"{key}.png")
    labels = read_labels(shared_data / "ddti" / "labels.csv")
    write_labels(root / "labels.csv", {key: labels[key] for key in FRAMES})
    return root


def rows_of(out: Path) -> dict[str, dict[str, str]]:
    return {Path(r["file"]).stem: r for r in csv.DictReader((out / "segmentation.csv").open())}


def test_segment_writes_predictions_shape_and_acr(tmp_path, ddti, models):
    out = tmp_path / "out"
    assert cli.main(["segment", str(ddti / "image"), "--out", str(out), "--model", str(models[True]), "--device", "cpu",
                     "--threshold", THRESHOLD]) == 0
    rows = rows_of(out)
    assert set(FINDINGS_COLUMNS) <= set(next(iter(rows.values())))
    segmenter = Segmenter.from_checkpoint(models[True], device="cpu", threshold=float(THRESHOLD))
    for key, row in rows.items():
        result = segmenter(read_frame(ddti / "image" / f"{key}.png").pixels)
        predicted = result.findings
        assert float(row["suspicious_prob"]) == pytest.approx(predicted.suspicious, abs=1e-4)
        for name, probs in predicted.probabilities.items():
            assert row[f"{name}_pred"] == max(probs, key=probs.get)
            assert float(row[f"{name}_prob"]) == pytest.approx(max(probs.values()), abs=1e-4)
        shape = shape_of(read_mask(out / f"{key}.png"))
        assert row["solidity"] == f"{shape.solidity:.4f}" and row["taller_than_wide"] == str(shape.taller_than_wide).lower()
        acr = score(predicted.most_likely(), shape)
        assert (row["acr_points"], row["acr_level"]) == (str(acr.total), acr.level.name)


def test_segment_without_findings_heads_leaves_predictions_empty(tmp_path, ddti, models):
    out = tmp_path / "out"
    assert cli.main(["segment", str(ddti / "image" / "3.png"), "--out", str(out), "--model", str(models[False]),
                     "--device", "cpu", "--threshold", THRESHOLD]) == 0
    row = rows_of(out)["3"]
    assert read_mask(out / "3.png").any()
    assert row["solidity"] != "" and row["taller_than_wide"] in ("true", "false")
    assert all(row[c] == "" for c in FINDINGS_COLUMNS if c not in ("solidity", "taller_than_wide"))


def test_evaluate_scores_findings_from_labels_beside_the_masks(tmp_path, ddti, models, capsys):
    report = tmp_path / "eval.json"
    status = cli.main(["evaluate", "--model", str(models[True]), "--images", str(ddti / "image"),
                       "--masks", str(ddti / "mask"), "--device", "cpu", "--json", str(report)])
    assert status == 0
    captured = capsys.readouterr()
    assert "findings scored on 5 of 6 frames" in captured.err
    table = captured.out.split("\n\n")[1].splitlines()
    assert table[0].split()[:3] == ["finding", "n", "accuracy"]
    assert [line.split()[0] for line in table[1:]] == ["suspicious", *FIELDS]
    payload = json.loads(report.read_text())
    findings = payload["findings"]
    assert payload["labels"] == str(ddti / "labels.csv")
    # Scored against what the Segmenter predicts for the five labelled frames.
    segmenter = Segmenter.from_checkpoint(models[True], device="cpu")
    labels = read_labels(ddti / "labels.csv")
    keys = [k for k in FRAMES if labels[k]]
    probs = [segmenter(read_frame(ddti / "image" / f"{k}.png").pixels).findings.suspicious for k in keys]
    truth = [labels[k].suspicious for k in keys]
    assert findings["suspicious"]["n"] == 5 and findings["suspicious"]["positives"] == sum(truth) == 2
    assert findings["suspicious"]["auc"] == pytest.approx(roc_auc(truth, probs))
    assert sum(map(sum, findings["composition"]["confusion"])) == 5


def test_evaluate_with_explicit_labels_and_without_heads(tmp_path, ddti, models, capsys):
    labels = tmp_path / "mine.csv"
    write_labels(labels, {"3": Findings({"tirads": "2"}), "15": Findings({"tirads": "5"})})
    report = tmp_path / "eval.json"
    assert cli.main(["evaluate", "--model", str(models[True]), "--images", str(ddti / "image"),
                     "--masks", str(ddti / "mask"), "--labels", str(labels), "--device", "cpu", "--json", str(report)]) == 0
    findings = json.loads(report.read_text())["findings"]
    assert set(findings) == {"suspicious", "tirads"} and findings["suspicious"]["n"] == 2
    capsys.readouterr()
    assert cli.main(["evaluate", "--model", str(models[False]), "--images", str(ddti / "image"),
                     "--masks", str(ddti / "mask"), "--device", "cpu", "--json", str(report)]) == 0
    assert "findings not scored" in capsys.readouterr().err
    assert "findings" not in json.loads(report.read_text())


def test_a_bad_labels_file_is_a_usage_error(tmp_path, ddti, models, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,tirads\n3,7\n")
    assert cli.main(["evaluate", "--model", str(models[True]), "--images", str(ddti / "image"),
                     "--masks", str(ddti / "mask"), "--labels", str(bad), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "bad.csv, line 2" in err and "'7' is not one of" in err
