"""Gland pseudo-labels for the DDTI frames, from what TG3K teaches and the frames' own nodule masks.

DDTI has no gland masks. A U-Net trained on TG3K's gland masks alone, run on a DDTI frame, marks the
healthy parenchyma beside the nodule (TG3K's volunteers have no nodules) but not the nodule itself.
The lobe that holds the nodule is then that parenchyma united with the nodule, closed so the two
join, kept where it touches the nodule, its holes filled. These masks are pseudo-labels, not ground
truth: they train the gland head in DDTI's own domain (docs/training.md, "Gland pseudo-labels").

A frame whose construction is doubtful gets no gland mask (the gland loss skips it): the TG3K model
finds no parenchyma touching the nodule, or the lobe covers more than MAX_SHARE of the ultrasound image.

    python tools/gland_labels.py --model runs/tg3k-gland/checkpoint_final.pt \
        --ddti ../shared/data/ddti --out resources/ddti-gland --sheets docs/gland

The TG3K model: ``thyroid-studio train --arch unet --nodules <every third TG3K frame as image/ + mask/>
--encoder efficientnet-lite0 --size 224 --width 16 --epochs 6 --optimizer adamw --lr 1e-3 --schedule cosine
--loss dice+bce --augment ultrasound --batch-pairs 8 --findings-weight 0 --keep-aspect --fold all``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from thyroid_studio.engine.datasets.layouts import open_dataset, read_mask  # noqa: E402
from thyroid_studio.engine.geometry import fill_holes  # noqa: E402
from thyroid_studio.engine.inference.segmenter import Segmenter  # noqa: E402
from thyroid_studio.engine.io.files import write_mask_png, write_text_atomic  # noqa: E402
from thyroid_studio.engine.io.frames import read_frame  # noqa: E402
from thyroid_studio.engine.preprocessing import ultrasound_region  # noqa: E402

CLOSING = 41  # px, ellipse: joins the parenchyma on both sides of a nodule across the nodule's rim
MIN_PARENCHYMA = 0.10  # parenchyma touching the nodule, as a share of the nodule's area, below which the lobe is the nodule's guess
MAX_SHARE = 0.75  # a lobe over this share of the ultrasound image outlines the image, not a lobe


def lobe(parenchyma: np.ndarray, nodule: np.ndarray, closing: int = CLOSING) -> np.ndarray:
    """The lobe around ``nodule``: parenchyma | nodule, closed, the components touching the nodule, holes filled."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (closing, closing))
    joined = cv2.morphologyEx((parenchyma | nodule).astype(np.uint8), cv2.MORPH_CLOSE, kernel) > 0
    count, labels = cv2.connectedComponents(joined.astype(np.uint8), connectivity=8)
    touching = np.unique(labels[nodule & joined])
    kept = np.isin(labels, touching[touching > 0])
    return fill_holes(kept | nodule)


def doubt(parenchyma: np.ndarray, nodule: np.ndarray, gland: np.ndarray, region_area: int) -> str | None:
    """Why this frame's lobe should not train the gland head, or None when it may."""
    added = np.count_nonzero(gland & ~nodule & parenchyma)
    if added < MIN_PARENCHYMA * max(1, np.count_nonzero(nodule)):
        return "no parenchyma touches the nodule"
    if np.count_nonzero(gland) > MAX_SHARE * region_area:
        return f"the lobe covers over {MAX_SHARE:.0%} of the ultrasound image"
    return None


def thumbnail(gray: np.ndarray, nodule: np.ndarray, gland: np.ndarray | None, key: str, width: int) -> np.ndarray:
    image = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    for mask, colour in ((gland, (255, 200, 0)), (nodule, (0, 255, 0))):
        if mask is not None:
            contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(image, contours, -1, colour, 2)
    scale = width / image.shape[1]
    image = cv2.resize(image, (width, round(image.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    label = key if gland is not None else f"{key} (none)"
    cv2.putText(image, label, (3, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 255) if gland is None else (255, 255, 255), 1)
    return image


def write_sheets(tiles: list[np.ndarray], folder: Path, columns: int = 8, rows: int = 8) -> list[Path]:
    """Contact sheets of ``columns`` x ``rows`` thumbnails (JPEG), in the order given."""
    folder.mkdir(parents=True, exist_ok=True)
    height = max(t.shape[0] for t in tiles)
    width = max(t.shape[1] for t in tiles)
    paths = []
    per = columns * rows
    for n, start in enumerate(range(0, len(tiles), per)):
        sheet = np.zeros((rows * height, columns * width, 3), np.uint8)
        for i, tile in enumerate(tiles[start : start + per]):
            r, c = divmod(i, columns)
            sheet[r * height : r * height + tile.shape[0], c * width : c * width + tile.shape[1]] = tile
        used = (len(tiles[start : start + per]) + columns - 1) // columns
        path = folder / f"sheet-{n + 1:02d}.jpg"
        cv2.imwrite(str(path), sheet[: used * height], [cv2.IMWRITE_JPEG_QUALITY, 75])
        paths.append(path)
    return paths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, type=Path, help="U-Net trained on TG3K glands (its 'nodule' head is the gland)")
    parser.add_argument("--ddti", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path, help="folder for <key>.png gland masks (0/255) and glands.json")
    parser.add_argument("--sheets", type=Path, help="folder for contact sheets of every frame")
    parser.add_argument("--threshold", type=float, default=0.5, help="parenchyma probability threshold")
    args = parser.parse_args()
    torch.set_num_threads(1)
    segmenter = Segmenter.from_checkpoint(args.model, device="cpu")
    samples = open_dataset(args.ddti).samples
    args.out.mkdir(parents=True, exist_ok=True)
    report: dict[str, dict] = {}
    tiles = []
    for i, sample in enumerate(samples):
        gray = read_frame(sample.image).gray()
        nodule = read_mask(sample.mask)
        box = ultrasound_region(gray)
        region_area = box.height * box.width
        parenchyma = segmenter(gray).nodule_prob >= args.threshold
        gland = lobe(parenchyma, nodule)
        why = doubt(parenchyma, nodule, gland, region_area)
        inside = gland[box.y0 : box.y1, box.x0 : box.x1]
        report[sample.key] = {"share": float(np.count_nonzero(inside) / region_area),
                              "parenchyma_share": float(np.count_nonzero(parenchyma[box.y0 : box.y1, box.x0 : box.x1]) / region_area),
                              "nodule_share": float(np.count_nonzero(nodule) / region_area),
                              "doubt": why}
        if why is None:
            write_mask_png(args.out / f"{sample.key}.png", gland)
        if args.sheets:
            tiles.append(thumbnail(gray, nodule, gland if why is None else None, sample.key, 150))
        if (i + 1) % 50 == 0:
            print(f"{i + 1}/{len(samples)}", flush=True)
    kept = [r for r in report.values() if r["doubt"] is None]
    summary = {"frames": len(report), "labelled": len(kept),
               "median_share_of_ultrasound_image": float(np.median([r["share"] for r in kept])) if kept else None,
               "closing_px": CLOSING, "threshold": args.threshold, "min_parenchyma": MIN_PARENCHYMA, "max_share": MAX_SHARE,
               "frames_detail": report}
    write_text_atomic(args.out / "glands.json", json.dumps(summary, indent=1) + "\n")
    if args.sheets:
        write_sheets(tiles, args.sheets)
    print(f"{len(kept)} of {len(report)} frames labelled; median share of the ultrasound image "
          f"{summary['median_share_of_ultrasound_image']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
