"""How well the mask's solidity (engine/findings/shape.py) tells the radiologists' margin labels apart on DDTI,
and where to cut it; the numbers of docs/tirads.md.

    .venv/bin/python tools/margin_study.py [--data ../shared/data/ddti]

For every frame whose margin is labelled, the solidity of its ground-truth mask: the AUC for
"lobulated or irregular" (DDTI macro-/microlobulated, spiculated: 2 ACR points) against smooth
and ill-defined (0 points), and for "not well-defined" against well-defined, with exam-grouped
95 % bootstrap intervals. The cut is the one maximising Youden's J (sensitivity + specificity - 1)
on all frames; exam-grouped 5-fold cross-validation (cut chosen on four folds, applied to the
fifth) says how well such a cut carries to frames it was not chosen on. Last, the ACR points from
the radiologists' descriptors and the mask's shape against their own TI-RADS (4a+ = suspicious).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from thyroid_studio.engine.datasets.layouts import read_mask  # noqa: E402
from thyroid_studio.engine.datasets.splits import contiguous_folds, exam_id  # noqa: E402
from thyroid_studio.engine.findings.classification_metrics import bootstrap_interval, roc_auc  # noqa: E402
from thyroid_studio.engine.findings.fields import FIELDS, read_labels  # noqa: E402
from thyroid_studio.engine.findings.shape import IRREGULAR_BELOW, shape_of  # noqa: E402
from thyroid_studio.engine.findings.tirads import FROM_DDTI, LEVELS, level_of, score  # noqa: E402

IRREGULAR = {c for c, option in FROM_DDTI["margins"][1].items() if option == "lobulated or irregular"}


def youden_cut(values: np.ndarray, positive: np.ndarray) -> float:
    """The cut c maximising sensitivity + specificity - 1 for "positive when value < c" (midpoints of sorted values)."""
    levels = np.unique(values)
    cuts = np.r_[levels[0] - 1e-6, (levels[:-1] + levels[1:]) / 2, levels[-1] + 1e-6]
    sens = np.array([(values[positive] < c).mean() for c in cuts])
    spec = np.array([(values[~positive] >= c).mean() for c in cuts])
    return float(cuts[int(np.argmax(sens + spec - 1))])


def rates(values: np.ndarray, positive: np.ndarray, cut: float) -> tuple[float, float]:
    called = values < cut
    return float(called[positive].mean()), float((~called[~positive]).mean())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "ddti")
    args = parser.parse_args()
    labels = read_labels(args.data / "labels.csv")
    keys, solidity, margins, shapes = [], [], [], {}
    for key, findings in labels.items():
        if findings.get("margins") is None:
            continue
        shape = shape_of(read_mask(args.data / "mask" / f"{key}.png"))
        keys.append(key)
        shapes[key] = shape
        solidity.append(shape.solidity)
        margins.append(findings.get("margins"))
    solidity, margins = np.array(solidity), np.array(margins)
    groups = [exam_id(k) for k in keys]
    print(f"{len(keys)} frames with a margin label, {len(set(groups))} exams")
    for cls in sorted(set(margins)):
        q = np.percentile(solidity[margins == cls], [25, 50, 75])
        print(f"  {cls:15s} n={np.sum(margins == cls):3d}  solidity quartiles {q[0]:.3f} {q[1]:.3f} {q[2]:.3f}")
    for title, positive in (("lobulated/irregular vs smooth/ill-defined", np.isin(margins, list(IRREGULAR))),
                            ("not well-defined vs well-defined", margins != "well-defined")):
        auc = bootstrap_interval(positive, -solidity, roc_auc, groups=groups)
        print(f"AUC {title}: {auc.value:.3f} [{auc.low:.3f}, {auc.high:.3f}] (exam-grouped bootstrap, {auc.resamples})")
    positive = np.isin(margins, list(IRREGULAR))
    cut = youden_cut(solidity, positive)
    sens, spec = rates(solidity, positive, cut)
    print(f"Youden cut on all frames: solidity < {cut:.4f}: sensitivity {sens:.3f}, specificity {spec:.3f}, "
          f"balanced accuracy {(sens + spec) / 2:.3f}")
    sens, spec = rates(solidity, positive, IRREGULAR_BELOW)
    print(f"shipped cut (shape.IRREGULAR_BELOW) solidity < {IRREGULAR_BELOW}: sensitivity {sens:.3f}, "
          f"specificity {spec:.3f}, balanced accuracy {(sens + spec) / 2:.3f}")
    index = {k: i for i, k in enumerate(keys)}
    called = np.zeros(len(keys), dtype=bool)
    cuts = []
    for fold in contiguous_folds(keys, 5):
        held = np.array([index[k] for k in fold])
        train = np.setdiff1d(np.arange(len(keys)), held)
        cuts.append(youden_cut(solidity[train], positive[train]))
        called[held] = solidity[held] < cuts[-1]
    sens, spec = float(called[positive].mean()), float((~called[~positive]).mean())
    print(f"5-fold exam-grouped CV: cuts {', '.join(f'{c:.3f}' for c in cuts)}; held-out sensitivity {sens:.3f}, "
          f"specificity {spec:.3f}, balanced accuracy {(sens + spec) / 2:.3f}")
    rows = [(k, f) for k, f in labels.items() if f.suspicious is not None]
    points = np.array([score(f, shapes.get(k) or shape_of(read_mask(args.data / "mask" / f"{k}.png"))).total
                       for k, f in rows])
    suspicious = np.array([bool(f.suspicious) for _, f in rows])
    auc = bootstrap_interval(suspicious, points, roc_auc, groups=[exam_id(k) for k, _ in rows])
    print(f"ACR points (radiologists' descriptors + ground-truth mask shape) for their TI-RADS 4a+: "
          f"AUC {auc.value:.3f} [{auc.low:.3f}, {auc.high:.3f}] on {len(rows)} frames")
    levels = [level_of(int(p)).name for p in points]
    print("ACR level (columns) by the radiologists' category (rows):")
    names = [level.name for level in LEVELS]
    print("       " + " ".join(f"{n:>4s}" for n in names))
    for category in FIELDS["tirads"]:
        counts = [sum(1 for (_, f), lv in zip(rows, levels) if f.get("tirads") == category and lv == n) for n in names]
        print(f"  {category:4s} " + " ".join(f"{c:4d}" for c in counts))
    tall = sum(shape.taller_than_wide for shape in shapes.values())
    print(f"taller than wide (ground-truth masks): {tall} of {len(shapes)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
