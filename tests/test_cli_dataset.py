"""`thyroid-studio dataset`: add, check, --repair, stats; and two real processes at once, and kill -9."""
from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from thyroid_studio.cli import main
from thyroid_studio.engine.datasets.index import DatasetIndex
from thyroid_studio.engine.findings.fields import Findings, read_labels

from identity_pairs import Tally, tally, write_pairs

REPO = Path(__file__).resolve().parents[1]


def _cli(*args: str | Path) -> subprocess.Popen:
    """`python -m thyroid_studio dataset ...` in a process of its own (the worktree's package)."""
    return subprocess.Popen([sys.executable, "-m", "thyroid_studio", "dataset", *map(str, args)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _records(dataset: Path) -> int:
    path = dataset / "records.jsonl"
    return path.read_bytes().count(b"\n") if path.is_file() else 0


def test_help_and_usage_errors(capsys):
    with pytest.raises(SystemExit) as help_exit:
        main(["dataset", "--help"])
    assert help_exit.value.code == 0 and "add" in capsys.readouterr().out
    with pytest.raises(SystemExit) as usage:
        main(["dataset"])
    assert usage.value.code == 2
    assert main(["dataset", "check", "/no/such/folder"]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_add_skips_duplicates_carries_findings_and_reports_bad_pairs(tmp_path, capsys):
    source = write_pairs(tmp_path / "src", range(5))
    (source / "labels.csv").write_text("id,tirads,composition,echogenicity,margins,calcifications\n"
                                       "1,4a,solid,,,\n3,2,,,,\n")
    dataset = tmp_path / "dataset"
    assert main(["dataset", "add", str(dataset), str(source)]) == 0
    assert "added 5, skipped 0" in capsys.readouterr().out
    labels = read_labels(dataset / "labels.csv")
    items = DatasetIndex(dataset).items
    by_source = {Path(item.source).stem: key for key, item in items.items()}
    assert labels == {by_source["1"]: Findings({"tirads": "4a", "composition": "solid"}),
                      by_source["3"]: Findings({"tirads": "2"})}

    write_pairs(source, [7])
    cv2.imwrite(str(source / "mask" / "7.png"), np.zeros((10, 10), np.uint8))  # wrong size
    cv2.imwrite(str(source / "image" / "8.png"), np.zeros((64, 64), np.uint8))  # no mask
    assert main(["dataset", "add", str(dataset), str(source)]) == 1
    out, err = capsys.readouterr()
    assert sum(line.startswith("skipped ") for line in out.splitlines()) == 5 and "added 0, skipped 5 already there, 2 failed" in out
    assert "7.png: mask shape (10, 10) differs" in err and "8.png: no mask" in err
    assert main(["dataset", "check", str(dataset)]) == 0
    assert capsys.readouterr().out.strip().endswith("consistent")
    assert tally(dataset, range(5)) == Tally(5, 0, 0, 0)

    assert main(["dataset", "stats", str(dataset)]) == 0
    out = capsys.readouterr().out
    assert "5 items" in out and "tirads: 2 1, 4a 1" in out and "composition: solid 1" in out


def test_add_from_a_tn3k_layout_takes_its_trainval(tmp_path, capsys):
    tn3k = tmp_path / "tn3k"
    pairs = write_pairs(tmp_path / "pairs", range(4))
    for i in range(4):
        part = "trainval" if i < 3 else "test"
        for kind in ("image", "mask"):
            (tn3k / f"{part}-{kind}").mkdir(parents=True, exist_ok=True)
            (pairs / kind / f"{i}.png").rename(tn3k / f"{part}-{kind}" / f"{i:04d}.png")
    assert main(["dataset", "add", str(tmp_path / "d"), str(tn3k)]) == 0
    assert "from 3 in trainval" in capsys.readouterr().out
    assert tally(tmp_path / "d", range(3)).items == 3


def test_check_lists_problems_and_repair_fixes_them(tmp_path, capsys):
    dataset = tmp_path / "d"
    assert main(["dataset", "add", str(dataset), str(write_pairs(tmp_path / "src", range(6)))]) == 0
    (dataset / "trainval-mask" / ".0002.x1y2.tmp.png").write_bytes(b"half")
    (dataset / "tn3k-trainval-fold1.json").write_text('{"train": [], "val": []}')
    capsys.readouterr()
    assert main(["dataset", "check", str(dataset)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert "trainval-mask/.0002.x1y2.tmp.png: a temporary file of an interrupted write" in out
    assert "0001: in the val of 0 folds [] (not exactly one)" in out and out[-1].endswith("problem(s)")
    assert main(["dataset", "check", "--repair", str(dataset)]) == 0
    out = capsys.readouterr().out
    assert "fixed: deleted trainval-mask/.0002.x1y2.tmp.png" in out and "fixed: tn3k-trainval-fold1.json" in out
    assert main(["dataset", "check", str(dataset)]) == 0


@pytest.mark.slow
def test_two_processes_adding_at_once_lose_nothing(tmp_path):
    """40 pairs each into one dataset at the same time: every pair in once, with its own mask."""
    dataset = tmp_path / "d"
    first = _cli("add", dataset, write_pairs(tmp_path / "a", range(40)))
    second = _cli("add", dataset, write_pairs(tmp_path / "b", range(40, 80)))
    for process in (first, second):
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        assert "added 40, skipped 0" in out
    assert tally(dataset, range(80)) == Tally(80, 0, 0, 0)
    assert main(["dataset", "check", str(dataset)]) == 0


@pytest.mark.slow
def test_kill_9_during_add_then_repair_leaves_every_committed_pair_whole(tmp_path):
    rng = random.Random(9)
    source = write_pairs(tmp_path / "src", range(30))
    dataset = tmp_path / "d"
    committed = 0
    for _ in range(3):
        process = _cli("add", dataset, source)
        start = _records(dataset)
        deadline = time.monotonic() + 60
        while _records(dataset) <= start and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)  # until this run has committed something
        time.sleep(rng.uniform(0.0, 0.2))
        process.send_signal(signal.SIGKILL)  # nothing when the run has already finished (little left to add)
        process.communicate()
        assert main(["dataset", "check", "--repair", str(dataset)]) == 0
        assert main(["dataset", "check", str(dataset)]) == 0
        counts = tally(dataset, range(30))
        assert counts.mispaired == counts.twice == 0 and counts.items >= committed
        committed = counts.items
    finish = _cli("add", dataset, source)
    out, err = finish.communicate(timeout=120)
    assert finish.returncode == 0, err
    assert tally(dataset, range(30)) == Tally(30, 0, 0, 0)
