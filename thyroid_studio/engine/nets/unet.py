"""U-Net (Ronneberger et al., MICCAI 2015): the single-task baseline of TRFE-Net's Table 1."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from .findings_head import FindingsHead
from .segmentation_net import SegmentationNet


class UNet(SegmentationNet):
    """Encoder-decoder with skips; predicts the nodule (and, with a vocabulary, the findings).

    ``width`` sets the decoder's channels (and the plain encoder's: 64 in the paper).
    """

    def __init__(self, in_channels: int = 3, width: int = 64, encoder: str = "plain",
                 findings: Mapping[str, Sequence[str]] | None = None, norm: str = "batch") -> None:
        super().__init__(in_channels, width, encoder, norm)
        self.nodule_decoder = self.decoder()
        self.findings_head = FindingsHead(self.encoder.channels[-1], findings) if findings else None

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        encoded = self.encoder(x)
        out = {"nodule": self.nodule_decoder(encoded)}
        if self.findings_head is not None:
            out["findings"] = self.findings_head(encoded[-1], out["nodule"])
        return out
