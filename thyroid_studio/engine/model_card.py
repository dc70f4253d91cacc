"""The Markdown model card written beside every checkpoint that training or fine-tuning produces."""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
from pathlib import Path
from typing import Any

from .checkpoint import ModelMeta
from .files import write_text_atomic

ARCH_TITLES = {
    "unet": "U-Net (Ronneberger et al., MICCAI 2015), nodule head only",
    "mtnet": "MT-Net: shared encoder, gland and nodule decoders, no region prior (TRFE-Net's baseline)",
    "trfe-a": "TRFE-Net-A: gland probability as the region prior of the nodule decoder",
    "trfe-b": "TRFE-Net-B: 1x1 convolution of the gland features as the region prior",
    "trfe-c": "TRFE-Net-C: 1x1 convolution of nodule and gland features as the region prior",
}

CITATIONS = (
    "- DDTI: L. Pedraza, C. Vargas, F. Narvaez, O. Duran, E. Munoz, E. Romero, \"An open access thyroid "
    "ultrasound image database\", Proc. SPIE 9287, 2015 (as re-processed for TN-SCUI 2020).\n"
    "- TG3K: T. Wunderling et al., \"Comparison of thyroid segmentation techniques for 3D ultrasound\", "
    "SPIE Medical Imaging 2017, frames and masks as prepared for TRFE-Net.\n"
    "- TRFE-Net: H. Gong et al., \"Multi-task learning for thyroid nodule segmentation with thyroid region "
    "prior\", ISBI 2021."
)


def _percent(value: Any) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.2f}"


def _metrics_table(metrics: dict[str, Any]) -> str:
    rows = []
    for head in ("nodule", "gland"):
        m = metrics.get(head)
        if not m:
            continue
        rows.append(
            f"| {head} | {m.get('n', '-')} | {_percent(m.get('iou'))} ± {_percent(m.get('iou_std'))} "
            f"| {_percent(m.get('dice'))} ± {_percent(m.get('dice_std'))} | {_percent(m.get('precision'))} "
            f"| {_percent(m.get('recall'))} | {m.get('hd95_px', float('nan')):.1f} |"
        )
    if not rows:
        return "No validation metrics recorded."
    header = "| head | frames | Jaccard % | Dice % | precision % | recall % | HD95 px |\n| --- | --- | --- | --- | --- | --- | --- |"
    return header + "\n" + "\n".join(rows)


def _data_lines(training: dict[str, Any]) -> str:
    data = training.get("data", {})
    split = training.get("split", {})
    lines = [f"- {role}: `{root}`" for role, root in data.items() if root]
    if split.get("scheme"):
        lines.append(f"- split: {split['scheme']}; {split.get('train_count', '?')} training frames, "
                     f"{len(split.get('validation_keys', []))} validation frames (keys in the checkpoint's metadata)")
    if split.get("gland_train_split"):
        lines.append(f"- gland frames: split `{split['gland_train_split']}` to train, `{split['gland_validation_split']}` to validate")
    for key in ("finetuned_from", "held_out_keys", "replay"):
        if key in training:
            value = training[key]
            lines.append(f"- {key.replace('_', ' ')}: {json.dumps(value) if not isinstance(value, str) else value}")
    return "\n".join(lines) or "- (not recorded)"


def write_model_card(checkpoint_path: str | os.PathLike, meta: ModelMeta) -> Path:
    """Write ``<checkpoint stem>.md`` beside the checkpoint and return its path."""
    checkpoint_path = Path(checkpoint_path)
    training = meta.training or {}
    recipe = training.get("recipe", {})
    metrics = meta.metrics or {}
    epoch = f" (epoch {metrics['epoch']})" if metrics.get("epoch") else ""
    text = f"""# {meta.name or checkpoint_path.stem} (version {meta.version})

Thyroid nodule{" and gland" if meta.has_gland else ""} segmentation in B-mode ultrasound frames, for Thyroid Studio.

## Intended use

Research and teaching: outlining thyroid nodules in ultrasound frames so that a person can review and correct
them. For research, not diagnosis. It must not be used to decide on the care of a patient.

## Model

- architecture: {ARCH_TITLES.get(meta.arch, meta.arch)} (`{meta.arch}`)
- width: {meta.width} channels at full resolution (the paper uses 64)
- input: {meta.in_channels} x {meta.input_size[0]} x {meta.input_size[1]}, the gray frame cropped to the ultrasound
  region, {"letterboxed" if meta.keep_aspect else "stretched"}, contrast `{meta.contrast}`, scaled to [0, 1] and
  standardised with ImageNet mean/std
- output: sigmoid probability per pixel, threshold {meta.threshold}; masks restored to the frame's size

## Data

{_data_lines(training)}

Sources:

{CITATIONS}

## Recipe

```json
{json.dumps(recipe, indent=2, default=str)}
```

Command:

```
{training.get("command", "(not recorded)")}
```

## Validation{epoch}

Per-image mean ± std at the frames' original resolution (precision, recall, HD95: per-image means).

{_metrics_table(metrics)}

## Limitations

- Trained on few frames from public sets (DDTI: 1 scanner family, mostly single nodules); it has not been
  validated on other scanners, on multi-nodule frames or on a clinical population.
- The validation split is small (one exam-grouped fold), so the numbers above carry a wide uncertainty.
- A reduced width keeps it fast on a CPU; the paper's full-width models are more accurate.
- Frames must be B-mode ultrasound; Doppler overlays, calipers and text inside the image can mislead it.

Created {meta.created}; card written {_dt.date.today().isoformat()}.
"""
    return write_text_atomic(checkpoint_path.with_suffix(".md"), text)
