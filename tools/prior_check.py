"""Does the gland a model predicts hold the nodule it predicts, on frames with no ground truth?

    python tools/prior_check.py ../shared/data/tn3k-unlabeled --model models/trfe-a-lite0.pt [--model OTHER ...]

For every frame: the share of the predicted nodule that lies inside the predicted gland, and the
gland's share of the frame (a gland everywhere would hold everything and mean nothing). Prints
the median and mean per model; issue 7 measured the first at 28 % for the w8 model on TN3K.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from thyroid_studio.engine.inference.segmenter import Segmenter
from thyroid_studio.engine.io.frames import find_inputs, read_frame


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--model", type=Path, action="append", required=True)
    args = parser.parse_args()
    paths = find_inputs([args.folder])
    print("| model | frames | frames with a nodule | nodule inside gland, median % | mean % | gland share of frame, mean % |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for model in args.model:
        segmenter = Segmenter.from_checkpoint(model, device="cpu")
        inside, share = [], []
        for path in paths:
            result = segmenter(read_frame(path).pixels)
            share.append(result.gland_mask.mean())
            if result.nodule_mask.any():
                inside.append(result.gland_mask[result.nodule_mask].mean())
        print(f"| {model.name} | {len(paths)} | {len(inside)} | {100 * np.median(inside):.1f} | {100 * np.mean(inside):.1f} "
              f"| {100 * np.mean(share):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
