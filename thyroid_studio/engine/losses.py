"""Segmentation losses, per image, and the multi-task loss of the paired nodule/gland batch."""
from __future__ import annotations

import torch
import torch.nn.functional as F

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


def multitask_loss(
    outputs: dict[str, torch.Tensor],
    targets: torch.Tensor,
    is_nodule: torch.Tensor,
    kind: str = "dice",
    gland_weight: float = 0.5,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Nodule head scored on nodule frames, gland head on gland frames (weighted); returns (loss, parts).

    ``targets`` is (N, 1, H, W), each frame's own mask; ``is_nodule`` (N,) bool says which head it trains.
    """
    nodule = segmentation_loss(outputs["nodule"][is_nodule], targets[is_nodule], kind).mean()
    parts = {"nodule_loss": float(nodule.detach())}
    total = nodule
    if "gland" in outputs and (~is_nodule).any():
        gland = segmentation_loss(outputs["gland"][~is_nodule], targets[~is_nodule], kind).mean()
        parts["gland_loss"] = float(gland.detach())
        total = total + gland_weight * gland
    return total, parts
