"""The Markdown model card written beside every checkpoint that training or fine-tuning produces.

Everything on the card comes from the checkpoint's own metadata: the architecture and encoder
(from their tables), the data and split, the recipe and exact command, the validation scores
(nodule masks, the gland prior on nodule frames, the findings heads) and, for shipped models,
the cross-validation figures that ``tools/ship_model.py`` records.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
from pathlib import Path
from typing import Any

from ..io.files import write_text_atomic
from ..nets.encoders import encoder_spec
from .architectures import arch_spec
from .checkpoint import ModelMeta
from .roles import WHOLE_IMAGE_GLAND

CITATIONS = (
    "- DDTI: L. Pedraza, C. Vargas, F. Narvaez, O. Duran, E. Munoz, E. Romero, \"An open access thyroid "
    "ultrasound image database\", Proc. SPIE 9287, 2015 (as re-processed for TN-SCUI 2020).\n"
    "- TG3K: T. Wunderling et al., \"Comparison of thyroid segmentation techniques for 3D ultrasound\", "
    "SPIE Medical Imaging 2017, frames and masks as prepared for TRFE-Net.\n"
    "- TRFE-Net: H. Gong et al., \"Multi-task learning for thyroid nodule segmentation with thyroid region "
    "prior\", ISBI 2021.\n"
    "- EfficientNet: M. Tan, Q. V. Le, \"EfficientNet: rethinking model scaling for convolutional neural "
    "networks\", ICML 2019 (the Lite variants: the TensorFlow TPU repository)."
)


def _percent(value: Any) -> str:
    return "-" if not isinstance(value, (int, float)) or math.isnan(value) else f"{100 * value:.2f}"


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
        if metrics.get("cross_validation"):
            return ("No frame was held out from this model's training; the cross-validation below measures the same "
                    "recipe on frames its models never saw.")
        return "No validation metrics recorded."
    header = "| head | frames | Jaccard % | Dice % | precision % | recall % | HD95 px |\n| --- | --- | --- | --- | --- | --- | --- |"
    return header + "\n" + "\n".join(rows)


def _prior_lines(metrics: dict[str, Any]) -> str:
    prior = (metrics.get("nodule") or {}).get("gland_prior")
    if not prior:
        return ""
    return (f"\nGland prior on the {prior['n']} nodule frames: the predicted gland covers a median "
            f"{_percent(prior['coverage_median'])} % of the true nodule (mean {_percent(prior['coverage_mean'])} %, "
            f"10th percentile {_percent(prior['coverage_p10'])} %) and {_percent(prior['gland_share_mean'])} % of the ultrasound image.\n")


def _findings_lines(findings: dict[str, Any] | None) -> str:
    if not findings:
        return ""
    lines = ["", "", "| finding | frames | accuracy % | balanced accuracy % | majority-class % | AUC [95 % CI] |",
             "| --- | ---: | ---: | ---: | ---: | --- |"]
    for name, m in findings.items():
        auc = f"{m['auc']:.3f} [{m.get('auc_low', math.nan):.3f}, {m.get('auc_high', math.nan):.3f}]" if "auc" in m else "-"
        lines.append(f"| {name} | {m['n']} | {_percent(m.get('accuracy'))} | {_percent(m.get('balanced_accuracy'))} "
                     f"| {_percent(m.get('majority_accuracy'))} | {auc} |")
    return "\n".join(lines) + "\n"


def _cross_validation(metrics: dict[str, Any]) -> str:
    cv = metrics.get("cross_validation")
    if not cv:
        return ""
    rows = "\n".join(f"| {f['fold']} | {f['n']} | {_percent(f['dice'])} | {_percent(f.get('coverage_median'))} "
                     f"| {_percent(f.get('suspicious_auc'))} |" for f in cv["folds"])
    return f"""
## Cross-validation

{cv['description']}

| fold | frames | Dice % | gland covers nodule, median % | AUC suspicious % |
| --- | ---: | ---: | ---: | ---: |
{rows}

Mean over folds: Dice {_percent(cv['dice_mean'])} ± {_percent(cv['dice_std'])} % (std over folds); over all
{cv['n']} frames: {_percent(cv['dice_frames'])} %.{_findings_lines(cv.get('findings'))}
"""


def _finetune_lines(metrics: dict[str, Any]) -> str:
    """A fine-tuned model's before/after table (the rows ``training.finetuning`` measured) and what it says."""
    table = metrics.get("finetune")
    if not table:
        return ""
    rows = "\n".join(f"| {row.get('title', key)} | {row['n']} | {_percent(row['before']['dice'])} "
                     f"| {_percent(row['after']['dice'])} |" for key, row in table.items())
    return f"""
## Fine-tuning

Dice % of the source checkpoint (before) and of this one (after), at the frames' original resolution:

| frames | n | before | after |
| --- | ---: | ---: | ---: |
{rows}

{metrics.get("finetune_advice", "")}
"""


def _measured_limitations(metrics: dict[str, Any]) -> str:
    """Limitations that this model's own figures show (cross-validation, else validation), one line each."""
    source = metrics.get("cross_validation") or metrics.get("nodule") or {}
    prior = source if "gland_share_mean" in source else source.get("gland_prior") or {}
    findings = (source.get("findings") or {}).get("suspicious") or {}
    lines = []
    share = prior.get("gland_share_mean")
    if isinstance(share, float) and share >= WHOLE_IMAGE_GLAND:
        lines.append(f"- The gland head marks {_percent(share)} % of the ultrasound image as gland on these nodule frames "
                     "(on average): there it is no prior, and the app neither draws nor uses such a gland.")
    low = findings.get("auc_low")
    if isinstance(low, float) and low <= 0.5:
        lines.append(f"- P(suspicious) separates TI-RADS 2-3 from 4a-5 with AUC {findings['auc']:.3f} (95 % CI down to "
                     f"{low:.3f}): not reliably better than chance; treat every predicted finding as a proposal.")
    return "".join(line + "\n" for line in lines)


def _data_lines(training: dict[str, Any]) -> str:
    data = training.get("data", {})
    split = training.get("split", {})
    lines = [f"- {role}: `{root}`" for role, root in data.items() if root]
    if split.get("scheme"):
        lines.append(f"- split: {split['scheme']}; {split.get('train_count', '?')} training frames, "
                     f"{len(split.get('validation_keys', []))} validation frames (keys in the checkpoint's metadata)")
    if split.get("gland_train_split"):
        lines.append(f"- gland frames: split `{split['gland_train_split']}` to train, `{split['gland_validation_split']}` to validate")
    for key in ("finetuned_from", "held_out_keys", "forgetting_sample_keys", "replay"):
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
    encoder = encoder_spec(meta.encoder)
    epoch = f" (epoch {metrics['epoch']})" if metrics.get("epoch") else ""
    heads = ["nodule"] + (["gland"] if meta.has_gland else []) + (["findings: P(suspicious), " + ", ".join(meta.findings)] if meta.findings else [])
    norm = ", ".join(f"{m:g}" for m in meta.mean), ", ".join(f"{s:g}" for s in meta.std)
    text = f"""# {meta.name or checkpoint_path.stem} (version {meta.version})

Thyroid nodule{" and gland" if meta.has_gland else ""} segmentation{" and TI-RADS findings" if meta.findings else ""} in B-mode ultrasound frames, for Thyroid Studio.

## Intended use

Research and teaching: outlining thyroid nodules in ultrasound frames so that a person can review and correct
them{", and proposing the radiologist's TI-RADS findings for review" if meta.findings else ""}.
For research, not diagnosis. It must not be used to decide on the care of a patient.

## Model

- architecture: {arch_spec(meta.arch).title} (`{meta.arch}`)
- encoder: {encoder.title} (`{meta.encoder}`); pretrained weights: {encoder.weights}
- width: {meta.width} (decoder channels at its finest stage; the plain encoder's too)
- heads: {"; ".join(heads)}
- input: {meta.in_channels} x {meta.input_size[0]} x {meta.input_size[1]}, the gray frame cropped to the ultrasound
  region, {"letterboxed" if meta.keep_aspect else "stretched"}, contrast `{meta.contrast}`, scaled to [0, 1] and
  standardised with mean ({norm[0]}) and std ({norm[1]})
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
{_prior_lines(metrics)}{_findings_lines((metrics.get("nodule") or {}).get("findings"))}{_cross_validation(metrics)}\
{_finetune_lines(metrics)}
## Limitations

- Trained on few frames from public sets (DDTI: one scanner family, mostly single nodules); it has not been
  validated on other scanners, on multi-nodule frames or on a clinical population.
- Validation folds are small (about 100 frames each), so every number above carries a wide uncertainty.
- The TI-RADS category is a radiologist's reading on DDTI's Kwak-style scale, not pathology; the findings heads
  learn that reading, skewed towards suspicious categories (45 of the 344 labelled frames are 2-3).
- Frames must be B-mode ultrasound; Doppler overlays, calipers and text inside the image can mislead it.
{_measured_limitations(metrics)}
Created {meta.created}; card written {_dt.date.today().isoformat()}.
"""
    return write_text_atomic(checkpoint_path.with_suffix(".md"), text)
