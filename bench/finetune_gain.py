"""Does fine-tuning teach? A simulated new site, 20 corrected frames, Dice before and after (run by hand).

    python bench/finetune_gain.py --base runs/cv/trfe/fold4/checkpoint_final.pt [--variants default adamw-all ...]

The base model is a cross-validation fold's model, so the frames of its validation fold were
never trained on. That fold's exams are split into two contiguous halves:

- the **new site**: its frames get a fixed change of appearance, as another scanner would give
  (``new_site``: gamma 1.6, Gaussian blur sigma 1.2, 12 % zoom about the centre, masks zoomed
  alike); 20 of its frames (whole exams, the first ones) are the user's corrections, the rest
  measure what fine-tuning taught;
- the **original validation**: unchanged frames, never trained on, measure forgetting.

Each variant fine-tunes the base with ``engine.training.finetuning`` (replaying the base's own training
frames) and is scored before/after on both sets at original resolution; the wall time includes
everything ``finetune`` does. Prints a Markdown table; record it in bench/README.md.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import torch

from thyroid_studio.engine.datasets.layouts import open_dataset
from thyroid_studio.engine.datasets.splits import exam_groups
from thyroid_studio.engine.inference.segmenter import Segmenter
from thyroid_studio.engine.io.files import write_image_atomic, write_mask_png
from thyroid_studio.engine.io.paths import from_project
from thyroid_studio.engine.models.checkpoint import read_meta
from thyroid_studio.engine.training.evaluation import Case, evaluate
from thyroid_studio.engine.training.finetuning import FinetuneConfig, finetune
from thyroid_studio.engine.training.frameset import read_sample

CORRECTED_FRAMES = 20
VARIANTS = {
    # name: the FinetuneConfig fields that differ from the defaults
    "default": {},
    "sgd-decoder": dict(trainable="nodule-decoder", optimizer="sgd", lr=1e-3, epochs=8),
    "adamw-decoder": dict(trainable="nodule-decoder", optimizer="adamw", lr=3e-4, epochs=8),
    "adamw-all-but-gland": dict(trainable="all-but-gland", optimizer="adamw", lr=1e-4, epochs=8),
    "adamw-all": dict(trainable="all", optimizer="adamw", lr=1e-4, epochs=8),
    "adamw-all-but-gland-lr3e-4": dict(trainable="all-but-gland", optimizer="adamw", lr=3e-4, epochs=8),
    "adamw-all-but-gland-replay1": dict(trainable="all-but-gland", optimizer="adamw", lr=1e-4, epochs=8, replay_ratio=1.0),
}


def new_site(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The fixed change of appearance of the simulated site: gamma 1.6, blur sigma 1.2, 12 % zoom."""
    lut = (255.0 * (np.arange(256) / 255.0) ** 1.6).astype(np.uint8)
    out = cv2.GaussianBlur(cv2.LUT(image, lut), (0, 0), 1.2)
    h, w = out.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), 0.0, 1.12)
    zoomed = cv2.warpAffine(out, matrix, (w, h), flags=cv2.INTER_LINEAR)
    return zoomed, cv2.warpAffine(mask.astype(np.uint8), matrix, (w, h), flags=cv2.INTER_NEAREST) > 0


def split_fold(base: Path) -> tuple[Path, list[str], list[str], list[str]]:
    """(data root, corrected keys, other site keys, original validation keys) from the base's validation fold."""
    meta = read_meta(base)
    root = from_project(meta.training["data"]["nodules"])
    groups = exam_groups(meta.training["split"]["validation_keys"])
    half = len(groups) // 2
    site, original = [k for g in groups[:half] for k in g], [k for g in groups[half:] for k in g]
    corrected: list[str] = []
    for group in groups[:half]:
        if len(corrected) >= CORRECTED_FRAMES:
            break
        corrected += group
    return root, corrected, [k for k in site if k not in corrected], original


def load_cases(root: Path, keys: list[str], site: bool) -> list[Case]:
    by_key = {s.key: s for s in open_dataset(root).samples}
    cases = []
    for key in keys:
        frame, mask = read_sample(by_key[key])
        if site:
            frame, mask = new_site(frame, mask)
        cases.append(Case(key, frame, mask))
    return cases


def write_corrected(root: Path, keys: list[str], target: Path) -> Path:
    """The new site's corrected frames as an image/ + mask/ dataset (what the app's saves give)."""
    for case in load_cases(root, keys, site=True):
        write_image_atomic(target / "image" / f"{case.key}.png", case.frame)
        write_mask_png(target / "mask" / f"{case.key}.png", case.mask)
    return target


def dice(path: Path, cases: list[Case]) -> float:
    return evaluate(Segmenter.from_checkpoint(path, device="cpu"), cases).summary()["per_image"]["dice"]["mean"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="a cross-validation fold's checkpoint")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    root, corrected, other, original = split_fold(args.base)
    site_cases, original_cases = load_cases(root, other, site=True), load_cases(root, original, site=False)
    before = {"site": dice(args.base, site_cases), "original": dice(args.base, original_cases)}
    print(f"base {args.base}: {len(corrected)} corrected site frames, {len(site_cases)} other site frames, "
          f"{len(original_cases)} original validation frames", flush=True)
    print(f"before: site Dice {before['site']:.4f}, original validation Dice {before['original']:.4f}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = write_corrected(root, corrected, Path(tmp) / "corrected")
        for name in args.variants:
            config = replace(FinetuneConfig(str(args.base), str(data), out=str(Path(tmp) / f"{name}.pt"), device="cpu"),
                             **VARIANTS[name])
            started = time.perf_counter()
            result = finetune(config)
            seconds = time.perf_counter() - started
            after = {"site": dice(result.checkpoint, site_cases), "original": dice(result.checkpoint, original_cases)}
            rows.append({"variant": name, **{k: getattr(config, k) for k in ("trainable", "optimizer", "lr", "epochs", "replay_ratio")},
                         "seconds": seconds, "site_before": before["site"], "site_after": after["site"],
                         "original_before": before["original"], "original_after": after["original"]})
            print(f"{name}: site {100 * (after['site'] - before['site']):+.2f} pt, original "
                  f"{100 * (after['original'] - before['original']):+.2f} pt, {seconds:.0f} s", flush=True)
    print(f"\n{dt.date.today().isoformat()}, {torch.get_num_threads()} torch threads, base {args.base.name}\n")
    print("| variant | trains | optimiser, lr | epochs | replay | site Dice before -> after | original Dice before -> after | time |")
    print("| --- | --- | --- | ---: | ---: | --- | --- | ---: |")
    for r in rows:
        print(f"| {r['variant']} | {r['trainable']} | {r['optimizer']} {r['lr']:g} | {r['epochs']} | {r['replay_ratio']:g} | "
              f"{100 * r['site_before']:.2f} -> {100 * r['site_after']:.2f} ({100 * (r['site_after'] - r['site_before']):+.2f}) | "
              f"{100 * r['original_before']:.2f} -> {100 * r['original_after']:.2f} "
              f"({100 * (r['original_after'] - r['original_before']):+.2f}) | {r['seconds']:.0f} s |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
