"""TRFE-Net: thyroid-region-prior guided feature enhancement.

H. Gong et al., "Multi-task learning for thyroid nodule segmentation with
thyroid region prior", ISBI 2021. The gland decoder's output guides the nodule
decoder after its stages at H/8, H/4 and H/2 (the region prior guide, RPG):

- A: F <- F + F * P, with P = sigmoid(gland logits) nearest-downsampled;
- B: F <- F + F * sigmoid(conv1x1(G)), G the gland decoder's features there;
- C: F <- F + F * conv1x1([F, G]), with as many output channels as F.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import Decoder, Encoder, level_widths

VARIANTS = ("a", "b", "c")


class TRFENet(nn.Module):
    """MT-Net plus the region prior guide of the chosen ``variant``."""

    has_gland = True

    def __init__(self, in_channels: int = 3, width: int = 64, variant: str = "a") -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown TRFE-Net variant {variant!r}; choose one of {', '.join(VARIANTS)}")
        self.variant = variant
        self.encoder = Encoder(in_channels, width)
        self.gland_decoder = Decoder(width)
        self.nodule_decoder = Decoder(width)
        # Channels of the nodule decoder after its 1/8, 1/4 and 1/2 stages.
        stage_widths = list(reversed(level_widths(width)[:4]))[:3]
        if variant == "b":
            self.prior_convs = nn.ModuleList(nn.Conv2d(c, 1, 1) for c in stage_widths)
        elif variant == "c":
            self.prior_convs = nn.ModuleList(nn.Conv2d(2 * c, c, 1) for c in stage_widths)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        encoded = self.encoder(x)
        gland_features = self.gland_decoder.features(encoded)
        gland = self.gland_decoder.head(gland_features[-1])
        prior = torch.sigmoid(gland)

        def refine(stage: int, nodule_features: torch.Tensor) -> torch.Tensor:
            if self.variant == "a":
                attention = F.interpolate(prior, size=nodule_features.shape[-2:], mode="nearest")
            elif self.variant == "b":
                attention = torch.sigmoid(self.prior_convs[stage](gland_features[stage]))
            else:
                attention = self.prior_convs[stage](torch.cat([nodule_features, gland_features[stage]], dim=1))
            return nodule_features + nodule_features * attention

        return {"nodule": self.nodule_decoder(encoded, refine), "gland": gland}
