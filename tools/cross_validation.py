"""Cross-validation: score each fold's final model on its own validation frames, pool, compare.

    python tools/cross_validation.py score runs/cv/trfe/fold* --name trfe [--tta] [--inside-gland] [--refine medsam]
                                     [--out docs/cv/trfe.json] [--figures docs/cv/figures]
    python tools/cross_validation.py compare docs/cv/trfe.json docs/cv/unet.json

``score`` loads ``checkpoint_final.pt`` of every run folder (``thyroid-studio train --fold k``),
scores it on that fold's validation frames (its ``data.json``) at original resolution with
the chosen inference options, and writes per-fold and per-frame results: nodule Dice, the
gland prior's coverage of the true nodule, and the out-of-fold findings, pooled over all
folds for the classification metrics (AUC with an exam-grouped bootstrap interval, balanced
accuracy, per-descriptor accuracy, confusion matrices and reliability figures). The final
checkpoint is scored, not the epoch that was best on the validation fold, so selection does
not flatter the figures. A validation frame whose very image (with another nodule: DDTI holds four
such groups) was among the fold's training frames is left out and counted as ``leaked``: the exam
grouping keeps dual-view halves together, not copies of one image under distant ids. ``compare`` gives the paired per-frame difference of two scorings
of the same frames (mean and standard error), and per fold.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

from thyroid_studio.engine.datasets.index import content_hash
from thyroid_studio.engine.datasets.layouts import open_dataset
from thyroid_studio.engine.datasets.splits import exam_id
from thyroid_studio.engine.findings.classification_metrics import (findings_metrics, format_findings_table, reliability,
                                                                   top_label, write_figure)
from thyroid_studio.engine.findings.fields import FIELDS, LABELS_FILE, PredictedFindings, read_labels
from thyroid_studio.engine.inference.refinement import with_refinement
from thyroid_studio.engine.inference.segmenter import PostProcess, Segmenter
from thyroid_studio.engine.io.files import write_text_atomic
from thyroid_studio.engine.io.frames import read_frame
from thyroid_studio.engine.io.paths import from_project
from thyroid_studio.engine.models.checkpoint import read_meta
from thyroid_studio.engine.training.evaluation import Case, evaluate
from thyroid_studio.engine.training.frameset import read_sample


def fold_cases(run: Path) -> tuple[list[Case], list[str], Path]:
    """The validation frames of one fold's run, with their findings (those whose image the fold trained on
    left out), the keys left out, and the final checkpoint."""
    checkpoint = run / "checkpoint_final.pt"
    meta = read_meta(checkpoint)
    root = from_project(meta.training["data"]["nodules"])
    labels = read_labels(root / LABELS_FILE) if (root / LABELS_FILE).is_file() else {}
    by_key = {s.key: s for s in open_dataset(root).samples}
    validation = meta.training["split"]["validation_keys"]
    trained = set(by_key) - set(validation)
    trained_images = {content_hash(read_frame(by_key[key].image).pixels) for key in trained}
    cases, leaked = [], []
    for key in validation:
        frame, mask = read_sample(by_key[key])
        if content_hash(read_frame(by_key[key].image).pixels) in trained_images:
            leaked.append(key)
            continue
        cases.append(Case(key, frame, mask, None, labels.get(key)))
    return cases, leaked, checkpoint


def score(runs: list[Path], tta: bool, inside_gland: bool, refine: str, largest: bool = False) -> dict[str, Any]:
    """Per-fold summaries and per-frame rows of every run, scored with the same inference options."""
    folds, frames, truths, predictions = [], [], [], []
    for run in sorted(runs):
        cases, leaked, checkpoint = fold_cases(run)
        meta = read_meta(checkpoint)
        segmenter = with_refinement(Segmenter.from_checkpoint(checkpoint, device="cpu", flip_tta=tta,
                                                              postprocess=PostProcess(largest_only=largest, inside_gland=inside_gland)), refine)
        evaluation = evaluate(segmenter, cases)
        summary = evaluation.summary()
        prior = summary.get("gland_prior") or {}
        fold = {"fold": meta.training["split"]["fold"], "run": run.name, "n": summary["n"], "leaked": leaked,
                "dice": summary["per_image"]["dice"]["mean"], "iou": summary["per_image"]["iou"]["mean"],
                "coverage_median": prior.get("coverage_median"), "gland_share_mean": prior.get("gland_share_mean")}
        if "findings" in summary and "suspicious" in summary["findings"]:
            fold["suspicious_auc"] = summary["findings"]["suspicious"]["auc"]
        folds.append(fold)
        rows = {row["name"]: {"key": row["name"], "fold": fold["fold"], "dice": row["dice"], "iou": row["iou"],
                              "coverage": row.get("coverage"), "gland_share": row.get("gland_share")}
                for row in evaluation.rows()}
        for key, predicted, known in evaluation.findings:
            truths.append(known)
            predictions.append(predicted)
            rows[key].update(suspicious_prob=predicted.suspicious,
                             probabilities={k: dict(v) for k, v in predicted.probabilities.items()})
        frames.extend(rows.values())
        print(f"fold {fold['fold']}: {fold['n']} frames, Dice {fold['dice']:.4f}", file=sys.stderr, flush=True)
    dice_folds = [f["dice"] for f in folds]
    coverage = [f["coverage"] for f in frames if f["coverage"] is not None]
    result: dict[str, Any] = {
        "options": {"tta": tta, "largest": largest, "inside_gland": inside_gland, "refine": refine},
        "folds": folds, "n": len(frames), "leaked": [key for f in folds for key in f["leaked"]],
        "dice_mean": float(np.mean(dice_folds)), "dice_std": float(np.std(dice_folds)),
        "dice_frames": float(np.mean([f["dice"] for f in frames])),
        "coverage_median": float(np.median(coverage)) if coverage else None,
        "gland_share_mean": float(np.mean([f["gland_share"] for f in frames if f["gland_share"] is not None])) if coverage else None,
        "gland_share_median": float(np.median([f["gland_share"] for f in frames if f["gland_share"] is not None])) if coverage else None,
        "frames": frames,
    }
    if truths:
        groups = [exam_id(f["key"]) for f in frames if "suspicious_prob" in f]
        result["findings"] = findings_metrics(truths, predictions, groups=groups)
        result["_pairs"] = (truths, predictions)
    return result


def write_figures(pairs: tuple[list, list[PredictedFindings]], folder: Path, name: str) -> None:
    """A confusion matrix beside a reliability diagram for "suspicious" and for each field."""
    truths, predictions = pairs
    known = np.array([t.suspicious is not None for t in truths])
    y = np.array([bool(t.suspicious) for t in truths])[known].astype(int)
    p = np.array([pr.suspicious for pr in predictions])[known]
    matrix = np.zeros((2, 2), int)
    np.add.at(matrix, (y, (p >= 0.5).astype(int)), 1)
    write_figure(folder / f"{name}-suspicious.png", matrix, ["2-3", "4a-5"], reliability(y == 1, p), title=f"{name}: suspicious")
    for field, classes in FIELDS.items():
        rows = [(classes.index(t.get(field)), [pr.probabilities[field][c] for c in classes])
                for t, pr in zip(truths, predictions) if t.get(field) is not None and field in pr.probabilities]
        if not rows:
            continue
        true, probs = np.array([r[0] for r in rows]), np.array([r[1] for r in rows])
        matrix = np.zeros((len(classes), len(classes)), int)
        np.add.at(matrix, (true, probs.argmax(1)), 1)
        write_figure(folder / f"{name}-{field}.png", matrix, list(classes), reliability(*top_label(true, probs)), title=f"{name}: {field}")


def markdown(name: str, result: dict[str, Any]) -> str:
    opts = ", ".join(k for k, v in result["options"].items() if v and v != "none") or "plain"
    lines = [f"### {name} ({opts})", "", "| fold | frames | Dice % | IoU % | gland covers nodule, median % | gland share % | AUC suspicious |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    pct = lambda v: "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.2f}"  # noqa: E731
    for f in result["folds"]:
        auc = f"{f['suspicious_auc']:.3f}" if f.get("suspicious_auc") is not None and not math.isnan(f["suspicious_auc"]) else "-"
        lines.append(f"| {f['fold']} | {f['n']} | {pct(f['dice'])} | {pct(f['iou'])} | {pct(f['coverage_median'])} "
                     f"| {pct(f['gland_share_mean'])} | {auc} |")
    if result.get("leaked"):
        lines += ["", f"Left out: {len(result['leaked'])} validation frames whose image the fold trained on "
                      f"({', '.join(result['leaked'])})."]
    lines += ["", f"Dice over folds {pct(result['dice_mean'])} ± {pct(result['dice_std'])} %; over all {result['n']} frames "
              f"{pct(result['dice_frames'])} %; gland covers the nodule (median over frames) {pct(result['coverage_median'])} %, "
              f"gland's share of the ultrasound image (median) {pct(result.get('gland_share_median'))} %."]
    if "findings" in result:
        lines += ["", "```", format_findings_table(result["findings"]), "```"]
    return "\n".join(lines) + "\n"


def compare(a: dict[str, Any], b: dict[str, Any]) -> str:
    """Paired per-frame Dice difference a - b over the frames both scored, and per fold."""
    db = {f["key"]: f for f in b["frames"]}
    pairs = [(f["dice"], db[f["key"]]["dice"], f["fold"]) for f in a["frames"] if f["key"] in db]
    diff = np.array([x - y for x, y, _ in pairs])
    lines = [f"paired over {len(diff)} frames: {100 * diff.mean():+.2f} points (standard error {100 * diff.std(ddof=1) / math.sqrt(len(diff)):.2f}); "
             f"first better on {int((diff > 0).sum())}, worse on {int((diff < 0).sum())}"]
    for fold in sorted({f for _, _, f in pairs}):
        d = [x - y for x, y, f in pairs if f == fold]
        lines.append(f"  fold {fold}: {100 * np.mean(d):+.2f} points over {len(d)} frames")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("score", help="score each fold's final model on its validation frames")
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--name", required=True)
    p.add_argument("--tta", action="store_true", help="flip test-time augmentation")
    p.add_argument("--inside-gland", action="store_true", help="keep nodule components touching the predicted gland")
    p.add_argument("--largest", action="store_true", help="keep only the largest nodule component")
    p.add_argument("--refine", default="none", help="refinement stage (none, medsam)")
    p.add_argument("--out", type=Path, help="JSON with per-fold and per-frame results")
    p.add_argument("--figures", type=Path, help="folder for the findings' confusion/reliability figures")
    c = sub.add_parser("compare", help="paired per-frame difference of two scorings")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    args = parser.parse_args()
    if args.command == "compare":
        print(compare(json.loads(args.a.read_text()), json.loads(args.b.read_text())))
        return 0
    result = score(args.runs, args.tta, args.inside_gland, args.refine, args.largest)
    pairs = result.pop("_pairs", None)
    if args.figures and pairs:
        write_figures(pairs, args.figures, args.name)
    if args.out:
        write_text_atomic(args.out, json.dumps(result, indent=1, default=float) + "\n")
    print(markdown(args.name, result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
