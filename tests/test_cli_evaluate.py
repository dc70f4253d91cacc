"""`thyroid-studio evaluate` on hand-made predictions (hand-checked numbers) and with a tiny model; `models`."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from thyroid_studio import cli
from thyroid_studio.engine.models.architectures import build_model
from thyroid_studio.engine.models.checkpoint import ModelMeta, save_checkpoint


def square(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    mask = np.zeros((10, 12), np.uint8)
    mask[y0:y1, x0:x1] = 255
    return mask


@pytest.fixture
def folders(tmp_path) -> Path:
    for name in ("images", "masks", "predictions"):
        (tmp_path / name).mkdir()
    for stem in ("a", "b", "c"):
        cv2.imwrite(str(tmp_path / "images" / f"{stem}.png"), np.full((10, 12), 80, np.uint8))
    cv2.imwrite(str(tmp_path / "masks" / "a.png"), square(0, 4, 0, 4))  # 16 px
    cv2.imwrite(str(tmp_path / "masks" / "b.png"), square(5, 10, 5, 10))  # 25 px
    cv2.imwrite(str(tmp_path / "masks" / "c.png"), square(0, 2, 0, 2))
    cv2.imwrite(str(tmp_path / "predictions" / "a.png"), square(0, 4, 0, 2))  # tp 8, fn 8
    (tmp_path / "predictions" / "sub").mkdir()
    cv2.imwrite(str(tmp_path / "predictions" / "sub" / "b.png"), square(5, 10, 5, 10))  # exact
    cv2.imwrite(str(tmp_path / "predictions" / "b_overlay.png"), np.zeros((3, 3), np.uint8))  # ignored
    return tmp_path


def test_predictions_hand_checked(folders, capsys):
    out = folders / "report.json"
    status = cli.main(["evaluate", "--predictions", str(folders / "predictions"), "--images", str(folders / "images"),
                       "--masks", str(folders / "masks"), "--json", str(out)])
    assert status == 1  # c has no prediction
    captured = capsys.readouterr()
    assert "missing predictions (not scored): c" in captured.err
    assert "Jaccard %" in captured.out and "75.00 ± 25.00" in captured.out  # IoU 0.5 and 1.0
    report = json.loads(out.read_text())
    summary = report["summary"]
    assert summary["n"] == 2 and report["missing_predictions"] == ["c"]
    assert summary["per_image"]["dice"]["mean"] == pytest.approx((16 / 24 + 1) / 2)
    assert summary["per_image"]["iou"]["std"] == pytest.approx(0.25)
    assert summary["pooled"]["dice"] == pytest.approx(2 * 33 / (2 * 33 + 8))
    assert summary["pooled"]["iou"] == pytest.approx(33 / 41)
    assert [row["name"] for row in report["per_image"]] == ["a", "b"]
    assert report["per_image"][0]["recall"] == pytest.approx(0.5)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    meta = ModelMeta("unet", 4, input_size=(64, 64), name="unet-tiny", metrics={"nodule": {"dice": 0.8123}})
    return save_checkpoint(tmp_path_factory.mktemp("models") / "unet-tiny.pt", build_model("unet", 4), meta)


def test_model_on_dataset_at_original_resolution(tmp_path, shared_data, checkpoint, capsys):
    root = tmp_path / "ddti"
    for kind in ("image", "mask"):
        (root / kind).mkdir(parents=True)
        for name in ("1.png", "10004.png"):
            shutil.copy(shared_data / "ddti" / kind / name, root / kind / name)
    out = tmp_path / "eval.json"
    status = cli.main(["evaluate", "--model", str(checkpoint), "--dataset", str(root), "--split", "all",
                       "--device", "cpu", "--json", str(out)])
    assert status == 0
    report = json.loads(out.read_text())
    assert report["summary"]["n"] == 2 and report["model"] == str(checkpoint)
    assert "pooled" in capsys.readouterr().out


def test_no_inputs_is_a_usage_error(tmp_path, capsys):
    assert cli.main(["evaluate", "--predictions", str(tmp_path), "--images", str(tmp_path / "nope"),
                     "--masks", str(tmp_path)]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_models_lists_and_prints_card(tmp_path, checkpoint, monkeypatch, capsys):
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(checkpoint, models / "unet-tiny.pt")
    (models / "unet-tiny.md").write_text("# unet-tiny\nA card.\n")
    (models / "defaults.json").write_text(json.dumps({"trfe": "missing.pt", "unet": "unet-tiny.pt"}))
    monkeypatch.setenv("THYROID_STUDIO_MODELS", str(models))
    monkeypatch.setenv("THYROID_STUDIO_HOME", str(tmp_path / "home"))
    assert cli.main(["models"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("unet-tiny"))
    assert line.split() == ["unet-tiny", "unet", "4", "64x64", "shipped", "*", "81.23"]
    assert cli.main(["models", "--card", "unet-tiny"]) == 0
    assert "A card." in capsys.readouterr().out
    assert cli.main(["models", "--card", "nope"]) == 2


def test_evaluate_reports_the_gland_prior_and_takes_flip_tta(tmp_path, capsys, shared_data):
    torch.manual_seed(0)
    model = save_checkpoint(tmp_path / "trfe.pt", build_model("trfe-a", 4), ModelMeta("trfe-a", 4, input_size=(64, 64)))
    for name in ("images", "masks"):
        (tmp_path / name).mkdir()
    for stem in ("3", "10005"):
        shutil.copy(shared_data / "ddti" / "image" / f"{stem}.png", tmp_path / "images")
        shutil.copy(shared_data / "ddti" / "mask" / f"{stem}.png", tmp_path / "masks")
    report = tmp_path / "eval.json"
    assert cli.main(["evaluate", "--model", str(model), "--images", str(tmp_path / "images"), "--masks",
                     str(tmp_path / "masks"), "--device", "cpu", "--tta", "--json", str(report)]) == 0
    assert "gland prior on 2 nodule frames" in capsys.readouterr().out
    payload = json.loads(report.read_text())
    prior = payload["summary"]["gland_prior"]
    rows = {row["name"]: row for row in payload["per_image"]}
    assert prior["n"] == 2 and prior["coverage_median"] == pytest.approx(np.median([rows[k]["coverage"] for k in rows]))
    assert all(0 <= rows[k]["gland_share"] <= 1 for k in rows)
