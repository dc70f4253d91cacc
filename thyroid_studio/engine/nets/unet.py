"""U-Net (Ronneberger et al., MICCAI 2015): the single-task baseline of TRFE-Net's Table 1."""
from __future__ import annotations

import torch
from torch import nn

from .blocks import Decoder, Encoder


class UNet(nn.Module):
    """Encoder-decoder with skips; predicts the nodule only.

    ``width`` is the channel count at full resolution (64 in the paper).
    """

    has_gland = False

    def __init__(self, in_channels: int = 3, width: int = 64) -> None:
        super().__init__()
        self.encoder = Encoder(in_channels, width)
        self.nodule_decoder = Decoder(width)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"nodule": self.nodule_decoder(self.encoder(x))}
