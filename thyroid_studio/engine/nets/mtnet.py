"""MT-Net: the multi-task baseline of TRFE-Net's Table 1 (one encoder, gland and nodule decoders, no prior)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from .blocks import Decoder
from .encoders import encoder_spec
from .findings_head import FindingsHead


class MTNet(nn.Module):
    """Shared encoder, two independent decoders (and, with a vocabulary, the findings heads)."""

    def __init__(self, in_channels: int = 3, width: int = 64, encoder: str = "plain",
                 findings: Mapping[str, Sequence[str]] | None = None) -> None:
        super().__init__()
        spec = encoder_spec(encoder)
        self.encoder = spec.build(in_channels, width)
        decoder = lambda: Decoder(self.encoder.channels, self.encoder.strides, spec.decoder_channels(width), spec.final_stride)  # noqa: E731
        self.gland_decoder = decoder()
        self.nodule_decoder = decoder()
        self.findings_head = FindingsHead(self.encoder.channels[-1], findings) if findings else None

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        encoded = self.encoder(x)
        out = {"nodule": self.nodule_decoder(encoded), "gland": self.gland_decoder(encoded)}
        if self.findings_head is not None:
            out["findings"] = self.findings_head(encoded[-1], out["nodule"])
        return out
