"""`thyroid-studio report` on files, folders and a video, with its exit statuses."""
from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import pytest
import torch

from thyroid_studio import cli
from thyroid_studio.engine.findings.fields import FIELDS
from thyroid_studio.engine.models.architectures import build_model
from thyroid_studio.engine.models.checkpoint import ModelMeta, save_checkpoint

from report_pages import pdf_text


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
    assert "would overwrite the report of" in capsys.readouterr().err


def test_report_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["report", "--help"])
    assert exit_.value.code == 0 and "--max-pages" in capsys.readouterr().out
