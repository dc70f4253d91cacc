"""MT-Net: the multi-task baseline of TRFE-Net's Table 1 (one encoder, gland and nodule decoders, no prior)."""
from __future__ import annotations

import torch
from torch import nn

from .blocks import Decoder, Encoder


class MTNet(nn.Module):
    """Shared encoder, two independent decoders."""

    has_gland = True

    def __init__(self, in_channels: int = 3, width: int = 64) -> None:
        super().__init__()
        self.encoder = Encoder(in_channels, width)
        self.gland_decoder = Decoder(width)
        self.nodule_decoder = Decoder(width)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        encoded = self.encoder(x)
        return {"nodule": self.nodule_decoder(encoded), "gland": self.gland_decoder(encoded)}
