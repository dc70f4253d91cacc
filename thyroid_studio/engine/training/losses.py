"""Segmentation losses per image, the weak gland loss on nodule frames, the findings loss, and their sum.

A training batch mixes nodule frames (nodule mask known) and gland frames (gland mask
known). The nodule head is scored on nodule frames, the gland head on every frame whose
gland is known (weighted, as in TRFE-Net): gland frames, and nodule frames that carry a
gland pseudo-label of their own. Two additions of ours:

- weak gland supervision: a nodule lies inside the thyroid, so on nodule frames without a
  gland label every nodule pixel is gland; the loss only pushes the gland probability up
  there (binary cross-entropy towards 1 on nodule pixels, nothing elsewhere);
- findings: alpha x cross-entropy per classification head (seed 002's joint loss),
  masked where the label is unknown, with per-class weights for the skewed categories.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .frameset import UNKNOWN

LOSSES = ("dice", "dice+bce")


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """1 - soft Dice per image (N,), with +1 smoothing as in TRFE-Net's code (an empty mask is not a NaN)."""
    prob = torch.sigmoid(logits.float()).flatten(1)
    target = target.float().flatten(1)
    intersection = (prob * target).sum(1)
    return 1.0 - (2.0 * intersection + smooth) / (prob.sum(1) + target.sum(1) + smooth)


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor, kind: str = "dice") -> torch.Tensor:
    """Per-image loss (N,): soft Dice, or soft Dice plus pixel-mean binary cross-entropy."""
    loss = soft_dice_loss(logits, target)
    if kind == "dice+bce":
        loss = loss + F.binary_cross_entropy_with_logits(logits.float(), target.float(), reduction="none").flatten(1).mean(1)
    elif kind != "dice":
        raise ValueError(f"unknown loss {kind!r}; choose one of {', '.join(LOSSES)}")
    return loss


def weak_gland_loss(gland_logits: torch.Tensor, nodule_masks: torch.Tensor) -> torch.Tensor:
    """Mean over nodule pixels of -log P(gland): "every nodule pixel is gland", and nothing said elsewhere."""
    inside = nodule_masks.float()
    per_pixel = F.binary_cross_entropy_with_logits(gland_logits.float(), torch.ones_like(inside), reduction="none")
    return (per_pixel * inside).sum() / inside.sum().clamp_min(1.0)


def findings_loss(logits: Mapping[str, torch.Tensor], labels: Mapping[str, torch.Tensor],
                  weights: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Class-weighted cross-entropy of each findings head over the frames whose label is known (others: 0)."""
    losses = {}
    for head, target in labels.items():
        known = target != UNKNOWN
        weight = weights[head].to(target.device)
        if not known.any() or not weight[target[known]].sum() > 0:  # nothing known here that the weights count
            continue
        out, wanted = logits[head][known].float(), target[known]
        if out.ndim == 1:  # the binary head: weight each frame by its class
            per_frame = F.binary_cross_entropy_with_logits(out, wanted.float(), reduction="none")
            losses[head] = (per_frame * weight[wanted]).sum() / weight[wanted].sum().clamp_min(1e-6)
        else:
            losses[head] = F.cross_entropy(out, wanted, weight=weight)
    return losses


@dataclass(frozen=True)
class LossWeights:
    """How much each part counts: gland head on gland frames, weak gland on nodule frames, each findings head."""

    kind: str = "dice"
    gland: float = 0.5
    weak_gland: float = 0.0
    findings: float = 0.2  # alpha of seed 002
    class_weights: Mapping[str, torch.Tensor] = field(default_factory=dict)


def multitask_loss(outputs: Mapping[str, torch.Tensor], masks: torch.Tensor, is_nodule: torch.Tensor,
                   weights: LossWeights = LossWeights(), labels: Mapping[str, torch.Tensor] | None = None,
                   glands: torch.Tensor | None = None, gland_known: torch.Tensor | None = None,
                   ) -> tuple[torch.Tensor, dict[str, float]]:
    """The training loss of one batch and its parts (as floats, for the log).

    ``masks`` is (N, 1, H, W), each frame's own mask; ``is_nodule`` (N,) says whether it is a
    nodule frame (its mask is a nodule) or a gland frame. ``glands``/``gland_known`` (a Batch's):
    the gland target of each frame whose gland is known; without them, gland frames' own masks.
    """
    if glands is None or gland_known is None:
        glands, gland_known = masks, ~is_nodule
    total = segmentation_loss(outputs["nodule"][is_nodule], masks[is_nodule], weights.kind).mean()
    parts = {"nodule_loss": float(total.detach())}
    if "gland" in outputs and gland_known.any():
        gland = segmentation_loss(outputs["gland"][gland_known], glands[gland_known], weights.kind).mean()
        parts["gland_loss"] = float(gland.detach())
        total = total + weights.gland * gland
    weakly = is_nodule & ~gland_known
    if "gland" in outputs and weights.weak_gland > 0 and weakly.any():
        weak = weak_gland_loss(outputs["gland"][weakly], masks[weakly])
        parts["weak_gland_loss"] = float(weak.detach())
        total = total + weights.weak_gland * weak
    if "findings" in outputs and labels and weights.findings > 0:
        for head, loss in findings_loss(outputs["findings"], labels, weights.class_weights).items():
            parts[f"{head}_loss"] = float(loss.detach())
            total = total + weights.findings * loss
    return total, parts
