"""Box-prompt benchmark (run by hand, not a test): LiteMedSAM with ground-truth boxes, as a refinement stage,
with clicks, and its speed, on the exam-grouped validation frames of one DDTI fold.

    PYTHONPATH=. .venv/bin/python bench/bench_prompt.py [--checkpoint models/trfe-a-lite0.pt] [--fold 0] [--folds 5]
                                                        [--frames 0] [--margins 0 5 10] [--clicks] [--threads 1]

Per frame (Dice against the ground truth, at the frame's resolution):

- **GT box**: the tight box of the ground-truth mask + 5 px each side, as a radiologist's drag would give;
  **box filled**: that box itself as the mask (the trivial baseline a box prompt must beat);
- **first stage**: the checkpoint's own nodule mask (``Segmenter``, no post-processing) and its largest
  component; **refined, margin m**: ``RefinedSegmenter`` (LiteMedSAM prompted with the box of the largest
  component + m px);
- ``--clicks``: after the GT box, one and two simulated corrective clicks (at the point deepest inside the
  largest error region: positive in a miss, negative in a false alarm), and one positive click alone;
- speed: the embedding per frame, and box -> mask at the frame's resolution once the embedding is ready.

The validation frames are the fold's (``splits.fold_split`` on the sorted DDTI keys, as training uses);
``--frames N`` takes N of them evenly spaced (0: all). Prints Markdown tables.
"""
from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from bench_inference import cpu_model  # bench/ is the script's folder, on sys.path

from thyroid_studio.engine import geometry
from thyroid_studio.engine.datasets.layouts import open_dataset, read_mask
from thyroid_studio.engine.datasets.splits import fold_split
from thyroid_studio.engine.inference.prompting import Embedding, PromptSegmenter, box_around, box_to_model
from thyroid_studio.engine.inference.refinement import RefinedSegmenter
from thyroid_studio.engine.inference.segmenter import Segmenter
from thyroid_studio.engine.io.frames import read_frame
from thyroid_studio.engine.metrics import dice
from thyroid_studio.engine.models.library import default_model, shipped_dir
from thyroid_studio.engine.preprocessing import restore
from thyroid_studio.engine.training.frameset import evenly_spaced

DDTI = Path(__file__).resolve().parents[2] / "shared" / "data" / "ddti"
GT_MARGIN_PX = 5


def filled(box: tuple[float, float, float, float], shape: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, bool)
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    mask[y0:y1, x0:x1] = True
    return mask


# ---------------------------------------------------------------- simulated clicks (experiment)


def corrective_click(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float, int] | None:
    """(x, y, label) at the pixel deepest inside the largest error region; 1 = add (a miss), 0 = remove."""
    best = None
    for label, error in ((1, gt & ~pred), (0, pred & ~gt)):
        region = geometry.largest_component(error)
        if region.sum() > (best[0].sum() if best else 0):
            best = (region, label)
    if best is None:
        return None
    depth = cv2.distanceTransform(np.pad(best[0], 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(np.argmax(depth), depth.shape)
    return float(x), float(y), best[1]


def decode_with_clicks(prompter: PromptSegmenter, embedding: Embedding, box, clicks) -> np.ndarray:
    """Box (or None) + clicks -> frame mask, through the model directly (clicks are not part of the engine's API)."""
    g = embedding.geometry
    sx, sy = g.content.width / g.frame_shape[1], g.content.height / g.frame_shape[0]
    coords = torch.tensor([[[(x + 0.5) * sx - 0.5, (y + 0.5) * sy - 0.5] for x, y, _ in clicks]], dtype=torch.float32)
    labels = torch.tensor([[label for _, _, label in clicks]])
    boxes = torch.from_numpy(box_to_model(box, g))[None] if box is not None else None
    with torch.inference_mode():
        low_res, _ = prompter.model.decode(embedding.features, boxes=boxes, points=(coords, labels))
    return restore(low_res[0, 0].numpy(), g) > 0


# ---------------------------------------------------------------- the run


def summary(name: str, values: list[float]) -> str:
    mean, sd = statistics.fmean(values), statistics.pstdev(values)
    return f"| {name} | {len(values)} | {100 * mean:.2f} ± {100 * sd:.2f} | {100 * statistics.median(values):.2f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=None, help="first stage (default: the shipped TRFE-Net)")
    parser.add_argument("--prompt-model", type=Path, default=shipped_dir() / "litemedsam.pt")
    parser.add_argument("--data", type=Path, default=DDTI)
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--frames", type=int, default=0, help="validation frames, evenly spaced (0: all)")
    parser.add_argument("--margins", type=float, nargs="+", default=[0, 5, 10])
    parser.add_argument("--clicks", action="store_true", help="also measure simulated clicks")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    checkpoint = args.checkpoint or default_model("trfe")
    first = Segmenter.from_checkpoint(checkpoint, device="cpu")
    prompter = PromptSegmenter.from_checkpoint(args.prompt_model, device="cpu")
    refiners = {m: RefinedSegmenter(first, prompter, margin=m) for m in args.margins}
    dataset = open_dataset(args.data)
    by_key = {s.key: s for s in dataset.samples}
    _, val_keys = fold_split(list(by_key), args.fold, args.folds)
    samples = evenly_spaced([by_key[k] for k in val_keys], args.frames)

    rows: dict[str, list[float]] = {}
    embed_s, box_ms = [], []

    def add(name: str, pred: np.ndarray, gt: np.ndarray) -> None:
        rows.setdefault(name, []).append(dice(pred, gt))

    for i, sample in enumerate(samples):
        pixels, gt = read_frame(sample.image).pixels, read_mask(sample.mask)
        tic = time.perf_counter()
        embedding = prompter.embed(pixels)
        embed_s.append(time.perf_counter() - tic)
        box = box_around(gt, GT_MARGIN_PX)
        tic = time.perf_counter()
        by_box = prompter.segment(embedding, box)
        box_ms.append(1000 * (time.perf_counter() - tic))
        add("GT box + 5 px: LiteMedSAM", by_box, gt)
        add("GT box + 5 px: the box filled", filled(box, gt.shape), gt)
        stage = first(pixels)
        add(f"first stage ({first.meta.name})", stage.nodule_mask, gt)
        add("first stage, largest component", geometry.largest_component(stage.nodule_mask), gt)
        for margin, refiner in refiners.items():
            add(f"refined, margin {margin:g} px", refiner.refine(pixels, stage).nodule_mask, gt)
        if args.clicks:
            clicks, pred = [], by_box
            for n in (1, 2):
                click = corrective_click(pred, gt)
                clicks += [click] if click else []
                pred = decode_with_clicks(prompter, embedding, box, clicks) if clicks else pred
                add(f"GT box + {n} corrective click{'s' * (n > 1)}", pred, gt)
            inside = cv2.distanceTransform(np.pad(gt, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
            y, x = np.unravel_index(np.argmax(inside), inside.shape)
            add("one positive click, no box", decode_with_clicks(prompter, embedding, None, [(x, y, 1)]), gt)
        print(f"{i + 1}/{len(samples)} {sample.key}: GT box {rows['GT box + 5 px: LiteMedSAM'][-1]:.3f}", flush=True)

    print(f"\n{dt.date.today()} - {cpu_model()}, torch {torch.__version__}, {args.threads} thread(s); "
          f"first stage {checkpoint.name}; DDTI fold {args.fold} of {args.folds}, {len(samples)} validation frames\n")
    print("| prompt | frames | Dice % mean ± sd | median % |\n| --- | ---: | ---: | ---: |")
    for name, values in rows.items():
        print(summary(name, values))
    base = rows[f"first stage ({first.meta.name})"]
    print("\n| refinement | gain in Dice points, mean ± sd | frames better / worse / equal |\n| --- | ---: | ---: |")
    for margin in refiners:
        gains = 100 * (np.array(rows[f"refined, margin {margin:g} px"]) - np.array(base))
        print(f"| margin {margin:g} px | {gains.mean():+.2f} ± {gains.std():.2f} | "
              f"{(gains > 0).sum()} / {(gains < 0).sum()} / {(gains == 0).sum()} |")
    embed_s, box_ms = sorted(embed_s), sorted(box_ms)
    print(f"\nembedding: median {statistics.median(embed_s):.2f} s, p90 {embed_s[int(0.9 * (len(embed_s) - 1))]:.2f} s "
          f"per frame; box -> mask at frame resolution: median {statistics.median(box_ms):.1f} ms, "
          f"p90 {box_ms[int(0.9 * (len(box_ms) - 1))]:.1f} ms")


if __name__ == "__main__":
    main()
