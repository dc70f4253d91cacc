"""The burnt-in ruler on DDTI (issue 18 targets), run by hand:

    .venv/bin/python bench/ruler_ddti.py [--data ../shared/data/ddti/image]

- **proposal**: how many of the frames get a scale proposal (``engine.io.ruler.propose_scale``), from which
  ruler, and how many are confirmed by the other ruler measured on its own (depth and lateral tick rows);
- **dual-view halves**: for each pair ``1xxxx``/``2xxxx`` (the left and right halves of one dual-view frame),
  whether both halves got a proposal and whether their spacings agree within 2 %; each pair that differs is
  listed with what each half's rulers say, and whether the half's large 5-cm mark sits five ticks below its
  large 0 mark (DDTI's depth rulers draw larger marks at 0 and 5 cm), which independently confirms that the
  ticks are 1 cm apart on that half;
- time per frame.
Prints Markdown (the tables in bench/README.md).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from thyroid_studio.engine.io.frames import read_frame  # noqa: E402
from thyroid_studio.engine.io.ruler import Ruler, RulerProposal, propose_scale  # noqa: E402

AGREE = 0.02
MARK_LEVEL = 128  # grey level of a mark's pixels


def mark_sizes(gray: np.ndarray, ruler: Ruler) -> list[int]:
    """Bright pixels within 3 px of each tick: about 4 for a 1-cm dot, 13 for a diamond."""
    sizes = []
    for x, y in ruler.ticks:
        r, c = int(round(y)), int(round(x))
        sizes.append(int((gray[max(r - 3, 0):r + 4, max(c - 3, 0):c + 4] >= MARK_LEVEL).sum()))
    return sizes


def five_cm_mark(gray: np.ndarray, proposal: RulerProposal) -> str:
    """'yes' when the depth ruler's ticks 0 and 5 are both large marks, 'no' when tick 5 is a plain one, '-'
    when the ruler has no tick 5 (shallower than 5 cm) or it is not a depth ruler."""
    ruler = proposal.ruler
    if ruler.axis != "depth" or 5 not in ruler.steps or ruler.steps[0] != 0:
        return "-"
    sizes = mark_sizes(gray, ruler)
    typical = statistics.median(sizes)
    big = {step for step, size in zip(ruler.steps, sizes) if size >= 2 * typical}
    return "yes" if {0, 5} <= big else "no"


def describe(name: str, width: int, proposal: RulerProposal | None, gray: np.ndarray) -> str:
    if proposal is None:
        return f"{name} ({width} px): no ruler"
    verdict = "agrees" if proposal.confirmed else "differs"
    other = "" if proposal.other is None else f", {proposal.other.axis} ruler {verdict}"
    return (f"{name} ({width} px): {proposal.ruler.tick_px:.1f} px/cm ({proposal.ruler.axis}, "
            f"{len(proposal.ruler.ticks)} ticks{other}; 5-cm mark: {five_cm_mark(gray, proposal)})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "ddti"
                        / "image")
    args = parser.parse_args()
    found: dict[str, tuple[int, RulerProposal | None, np.ndarray]] = {}
    seconds = []
    for path in sorted(args.data.glob("*.png"), key=lambda p: int(p.stem)):
        gray = read_frame(path).gray()
        tic = time.perf_counter()
        proposal = propose_scale(gray)
        seconds.append(time.perf_counter() - tic)
        found[path.stem] = (gray.shape[1], proposal, gray)
    proposals = [p for _, p, _ in found.values() if p is not None]
    total = len(found)
    print(f"frames: {total} in {args.data}; ruler read in {statistics.median(seconds) * 1000:.1f} ms per frame "
          f"(median; max {max(seconds) * 1000:.1f} ms)\n")
    print("| measure | frames | share |\n| --- | ---: | ---: |")
    print(f"| a scale proposal | {len(proposals)} | {len(proposals) / total:.1%} |")
    for axis, count in sorted(Counter(p.ruler.axis for p in proposals).items()):
        print(f"| ... from the {axis} ruler | {count} | {count / total:.1%} |")
    confirmed = sum(p.confirmed for p in proposals)
    print(f"| ... confirmed by the other ruler, measured on its own | {confirmed} | {confirmed / total:.1%} |")
    print(f"| no proposal | {total - len(proposals)} | {(total - len(proposals)) / total:.1%} |")
    print(f"\nno proposal: {', '.join(k for k, (_, p, _) in found.items() if p is None) or 'none'}")
    clusters = Counter(round(p.ruler.tick_px) for p in proposals)
    print("px per cm (rounded): " + ", ".join(f"{px}: {n}" for px, n in sorted(clusters.items())))

    pairs = sorted(k for k in found if len(k) == 5 and k[0] == "1" and f"2{k[1:]}" in found)
    both, agree, differ = 0, 0, []
    for left in pairs:
        right = f"2{left[1:]}"
        a, b = found[left][1], found[right][1]
        if a is None or b is None:
            differ.append((left, right, "one half has no proposal"))
            continue
        both += 1
        if abs(a.mm_per_px - b.mm_per_px) / min(a.mm_per_px, b.mm_per_px) <= AGREE:
            agree += 1
        else:
            differ.append((left, right, f"{abs(a.mm_per_px / b.mm_per_px - 1):.1%} apart"))
    print(f"\ndual-view pairs: {len(pairs)}; both halves with a proposal: {both} ({both / len(pairs):.1%}); "
          f"the same spacing within {AGREE:.0%}: {agree} of {both} ({agree / both:.1%}; {agree / len(pairs):.1%} of "
          "all pairs)\n")
    print("| pair | left half | right half | |\n| --- | --- | --- | --- |")
    for left, right, why in differ:
        print(f"| {left[1:]} | {describe(left, *found[left])} | {describe(right, *found[right])} | {why} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
