"""Test configuration: headless Qt, one torch thread, paths to the shared real data; the fixtures tests
share: the app's window on tiny default models with scripted answers, a textured frame for box prompts,
the synthetic training sets and one finished tiny run."""
from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)  # before the app's modules load

from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QMessageBox  # noqa: E402

from thyroid_studio.app.main_window import MainWindow  # noqa: E402
from thyroid_studio.engine.training.trainer import train  # noqa: E402

from app_driving import Answers, tiny_defaults  # noqa: E402
from box_prompts import textured, write_png  # noqa: E402
from dataset_files import write_nodule_pairs  # noqa: E402
from orthanc_server import orthanc, orthanc_tls  # noqa: E402, F401 - session fixtures: the test PACS
from training_runs import train_config  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data beside the checkout (../shared/data); tests that need it skip without it."""
    if not (SHARED_DATA / "ddti" / "image").is_dir():
        pytest.skip("../shared/data is not beside the checkout")
    return SHARED_DATA


# ----------------------------------------------------------------------------- the app


@pytest.fixture
def models(tmp_path, monkeypatch) -> dict[str, Path]:
    """Tiny untrained TRFE-Net and U-Net as the shipped defaults; the user folder in tmp."""
    return tiny_defaults(tmp_path, monkeypatch)


@pytest.fixture
def answers(monkeypatch) -> Answers:
    queue = Answers()
    monkeypatch.setattr(QMessageBox, "question", queue)
    return queue


@pytest.fixture
def window(qtbot, models, tmp_path, answers):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings=settings)
    qtbot.addWidget(win)
    win.resize(1000, 700)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()


@pytest.fixture
def frame_file(tmp_path) -> Path:
    return write_png(tmp_path / "frame.png", textured())


# ----------------------------------------------------------------------------- training


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("data")
    nodules = write_nodule_pairs(base / "nodules", [str(i) for i in range(1, 11)] + ["10011", "20011"], seed=1)
    glands = write_nodule_pairs(base / "glands", [f"{i:04d}" for i in range(12)], seed=2)
    (glands / "split.json").write_text(json.dumps({"train": [f"{i:04d}" for i in range(8)], "val": ["0008", "0009", "0010", "0011"]}))
    return {"nodules": nodules, "glands": glands}


@pytest.fixture(scope="session")
def finished_run(synthetic, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "run"
    result = train(train_config(synthetic, out), show_bar=False)
    assert result.status == "finished" and result.epochs_done == 2
    return out
