"""TRFE-Net: thyroid-region-prior guided feature enhancement.

H. Gong et al., "Multi-task learning for thyroid nodule segmentation with thyroid region
prior", ISBI 2021. MT-Net whose gland decoder guides the nodule decoder after its stages
at H/8, H/4 and H/2 (the region prior guide, RPG):

- A: F <- F + F * P, with P = sigmoid(gland logits) nearest-downsampled;
- B: F <- F + F * sigmoid(conv1x1(G)), G the gland decoder's features there;
- C: F <- F + F * conv1x1([F, G]), with as many output channels as F.

``prior_gradient`` (True in the paper's code) lets the nodule loss reach the gland decoder through
the prior. On frames without a gland label that loss rewards P = 1 everywhere (the largest feature
gain), and the gland head learns to mark the whole image (docs/training.md); with it False the prior
is detached: the gland head learns only from gland labels, the nodule decoder learns to use it.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .mtnet import MTNet

VARIANTS = ("a", "b", "c")


class TRFENet(MTNet):
    """MT-Net plus the region prior guide of the chosen ``variant``."""

    prior_gradient = True  # a training choice, not a weight: the trainer sets it (TrainConfig.prior_grad)

    def __init__(self, in_channels: int = 3, width: int = 64, variant: str = "a", encoder: str = "plain",
                 findings: Mapping[str, Sequence[str]] | None = None, norm: str = "batch") -> None:
        super().__init__(in_channels, width, encoder, findings, norm)
        if variant not in VARIANTS:
            raise ValueError(f"unknown TRFE-Net variant {variant!r}; choose one of {', '.join(VARIANTS)}")
        self.variant = variant
        widths = self.nodule_decoder.prior_widths()
        if variant == "b":
            self.prior_convs = nn.ModuleList(nn.Conv2d(c, 1, 1) for c in widths)
        elif variant == "c":
            self.prior_convs = nn.ModuleList(nn.Conv2d(2 * c, c, 1) for c in widths)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        encoded = self.encoder(x)
        gland_features = self.gland_decoder.features(encoded)
        gland = self.gland_decoder.logits(gland_features[-1])
        at_prior = self.gland_decoder.prior_features(gland_features)
        if not self.prior_gradient:
            gland_for_prior, at_prior = gland.detach(), [f.detach() for f in at_prior]
        else:
            gland_for_prior = gland
        prior = torch.sigmoid(gland_for_prior)

        def refine(level: int, nodule_features: torch.Tensor) -> torch.Tensor:
            if self.variant == "a":
                attention = F.interpolate(prior, size=nodule_features.shape[-2:], mode="nearest")
            elif self.variant == "b":
                attention = torch.sigmoid(self.prior_convs[level](at_prior[level]))
            else:
                attention = self.prior_convs[level](torch.cat([nodule_features, at_prior[level]], dim=1))
            return nodule_features + nodule_features * attention

        out = {"nodule": self.nodule_decoder(encoded, refine), "gland": gland}
        if self.findings_head is not None:
            out["findings"] = self.findings_head(encoded[-1], out["nodule"])
        return out
