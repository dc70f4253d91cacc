"""Classification heads on the shared encoder: is the nodule suspicious, its TI-RADS category, its descriptors.

As in FFANet+MTL (seed 002), classification shares the segmentation network's encoder and
is trained jointly with it. The deepest encoder feature is pooled twice -- over the whole
frame and weighted by the predicted nodule probability (detached, so classification does
not pull the segmentation) -- and a small shared layer feeds one linear head per finding.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

SUSPICIOUS = "suspicious"  # the binary head: TI-RADS 4a or above


class FindingsHead(nn.Module):
    """``forward(feature, nodule_logits)`` -> {"suspicious": (N,) logits, field: (N, classes) logits, ...}."""

    def __init__(self, in_channels: int, vocabulary: Mapping[str, Sequence[str]], hidden: int = 128, dropout: float = 0.3) -> None:
        super().__init__()
        self.shared = nn.Sequential(nn.Linear(2 * in_channels, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout))
        self.heads = nn.ModuleDict({SUSPICIOUS: nn.Linear(hidden, 1)})
        self.heads.update({name: nn.Linear(hidden, len(classes)) for name, classes in vocabulary.items()})

    def forward(self, feature: torch.Tensor, nodule_logits: torch.Tensor) -> dict[str, torch.Tensor]:
        weight = F.adaptive_avg_pool2d(torch.sigmoid(nodule_logits.detach().float()), feature.shape[-2:]).to(feature.dtype)
        inside = (feature * weight).sum((2, 3)) / weight.sum((2, 3)).clamp_min(1e-3)
        hidden = self.shared(torch.cat([feature.mean((2, 3)), inside], dim=1))
        out = {name: head(hidden) for name, head in self.heads.items()}
        out[SUSPICIOUS] = out[SUSPICIOUS][:, 0]
        return out
