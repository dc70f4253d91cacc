"""MT-Net: the multi-task baseline of TRFE-Net's Table 1 (one encoder, gland and nodule decoders, no prior)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from .findings_head import FindingsHead
from .segmentation_net import SegmentationNet


class MTNet(SegmentationNet):
    """Shared encoder, two independent decoders (and, with a vocabulary, the findings heads)."""

    def __init__(self, in_channels: int = 3, width: int = 64, encoder: str = "plain",
                 findings: Mapping[str, Sequence[str]] | None = None, norm: str = "batch") -> None:
        super().__init__(in_channels, width, encoder, norm)
        self.gland_decoder = self.decoder()
        self.nodule_decoder = self.decoder()
        self.findings_head = FindingsHead(self.encoder.channels[-1], findings) if findings else None

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        encoded = self.encoder(x)
        out = {"nodule": self.nodule_decoder(encoded), "gland": self.gland_decoder(encoded)}
        if self.findings_head is not None:
            out["findings"] = self.findings_head(encoded[-1], out["nodule"])
        return out
