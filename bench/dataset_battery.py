"""The dataset writer's target battery (issue 9), run by hand: concurrent `dataset add` runs and kill -9.

    .venv/bin/python bench/dataset_battery.py [--trials 4] [--pairs 40] [--kills 8] [--seed 9]

1. ``--trials`` times: two `thyroid-studio dataset add` processes, ``--pairs`` pairs each, into one new
   dataset at once -> items lost, mispaired (an image with another pair's mask), stored twice, exit codes.
2. ``--kills`` times: `dataset add` of 2 x ``--pairs`` pairs killed with SIGKILL at a random moment after
   its first commit, then `dataset check --repair` and `dataset check` (both as processes) -> their exit
   codes, and mispaired / stored twice among the items left; finally one `add` to the end -> lost.

Pairs carry their identity in their pixels (tests/identity_pairs.py). Prints one line per run and a summary.
"""
from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from identity_pairs import tally, write_pairs  # noqa: E402


def dataset_cli(*args: object) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "thyroid_studio", "dataset", *map(str, args)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def committed(dataset: Path) -> int:
    path = dataset / "records.jsonl"
    return path.read_bytes().count(b"\n") if path.is_file() else 0


def concurrent(work: Path, trials: int, pairs: int) -> bool:
    ok = True
    for trial in range(trials):
        dataset = work / f"concurrent{trial}"
        sources = [write_pairs(work / f"src{trial}-{k}", range(k * pairs, (k + 1) * pairs)) for k in range(2)]
        start = time.monotonic()
        runs = [dataset_cli("add", dataset, source) for source in sources]
        codes = [run.wait(timeout=600) for run in runs]
        seconds = time.monotonic() - start
        counts = tally(dataset, range(2 * pairs))
        check = dataset_cli("check", dataset).wait()
        print(f"concurrent trial {trial}: exit codes {codes}, {counts.items} items, lost {counts.lost}, "
              f"mispaired {counts.mispaired}, stored twice {counts.twice}, check exit {check}, {seconds:.1f} s")
        ok &= codes == [0, 0] and (counts.lost, counts.mispaired, counts.twice, check) == (0, 0, 0, 0)
    return ok


def kills(work: Path, kills: int, pairs: int, seed: int) -> bool:
    rng = random.Random(seed)
    source = write_pairs(work / "kill-src", range(2 * pairs))
    dataset = work / "killed"
    ok = True
    for kill in range(kills):
        run = dataset_cli("add", dataset, source)
        before = committed(dataset)
        while committed(dataset) <= before and run.poll() is None:
            time.sleep(0.002)
        delay = rng.uniform(0.0, 0.3)
        time.sleep(delay)
        finished_first = run.poll() is not None
        os.kill(run.pid, signal.SIGKILL)
        run.wait()
        repair = dataset_cli("check", "--repair", dataset)
        repair_out, _ = repair.communicate()
        check = dataset_cli("check", dataset).wait()
        counts = tally(dataset, range(2 * pairs))
        fixed = sum(line.startswith("fixed:") for line in repair_out.splitlines())
        print(f"kill {kill}: {delay * 1000:.0f} ms after a commit{' (had finished)' if finished_first else ''}; "
              f"repair exit {repair.returncode} ({fixed} fixed), check exit {check}, {counts.items} items, "
              f"mispaired {counts.mispaired}, stored twice {counts.twice}")
        for line in repair_out.splitlines():
            if line.startswith("fixed:"):
                print(f"    {line}")
        ok &= (repair.returncode, check, counts.mispaired, counts.twice) == (0, 0, 0, 0)
    final = dataset_cli("add", dataset, source).wait()
    counts = tally(dataset, range(2 * pairs))
    print(f"after the kills, one add to the end: exit {final}, {counts.items} items, lost {counts.lost}, "
          f"mispaired {counts.mispaired}, stored twice {counts.twice}")
    return ok and final == 0 and (counts.lost, counts.mispaired, counts.twice) == (0, 0, 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--pairs", type=int, default=40)
    parser.add_argument("--kills", type=int, default=8)
    parser.add_argument("--seed", type=int, default=9)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        ok = concurrent(Path(folder), args.trials, args.pairs)
        ok &= kills(Path(folder), args.kills, args.pairs, args.seed)
    print("battery:", "passed" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
