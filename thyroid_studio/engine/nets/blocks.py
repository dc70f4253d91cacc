"""Building blocks shared by the U-Net family (Ronneberger et al., 2015).

Each block is the paper's: two 3x3 convolutions with BatchNorm and ReLU; the
decoder doubles the resolution with 2x2 stride-2 transposed convolutions and
concatenates the encoder's feature at the same resolution (when it has one).
The decoder is built from the encoder's ``channels`` and ``strides``, so any
encoder in ``encoders.ENCODERS`` fits it.

``norm`` picks the normalisation of the blocks (``NORMS``): BatchNorm as in the paper, or
GroupNorm, whose statistics are each frame's own, so a batch mixing two domains (DDTI nodule
frames and TG3K gland frames) does not normalise one with the other's (TRFE+, Gong et al. 2023).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

PRIOR_STRIDES = (8, 4, 2)  # decoder outputs that TRFE-Net's region prior refines (H/8, H/4, H/2)
GROUPS = 8  # GroupNorm groups (fewer where a layer has fewer channels than that)


def _group_norm(channels: int) -> nn.GroupNorm:
    groups = GROUPS
    while channels % groups:
        groups //= 2
    return nn.GroupNorm(groups, channels)


NORMS: dict[str, Callable[[int], nn.Module]] = {"batch": nn.BatchNorm2d, "group": _group_norm}

Refine = Callable[[int, torch.Tensor], torch.Tensor]


def norm_layer(norm: str, channels: int) -> nn.Module:
    """The normalisation ``norm`` (a key of ``NORMS``) over ``channels``."""
    try:
        return NORMS[norm](channels)
    except KeyError:
        raise ValueError(f"unknown normalisation {norm!r}; choose one of {', '.join(NORMS)}") from None


class ConvBlock(nn.Sequential):
    """(3x3 conv -> norm -> ReLU) x 2."""

    def __init__(self, in_channels: int, out_channels: int, norm: str = "batch") -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            norm_layer(norm, out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            norm_layer(norm, out_channels),
            nn.ReLU(inplace=True),
        )


class UpStage(nn.Module):
    """Transposed-conv upsampling, concatenation with the skip (if any), then a block."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, norm: str = "batch") -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
        self.block = ConvBlock(out_channels + skip_channels, out_channels, norm)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        x = self.up(x)
        return self.block(x if skip is None else torch.cat([x, skip], dim=1))


class Decoder(nn.Module):
    """Up-stages from the encoder's deepest feature down to ``final_stride``, and a 1x1 logit head.

    ``channels[i]`` is the output width of stage i. Stage i's output has stride
    ``encoder_strides[-1] / 2**(i+1)`` and is concatenated with the encoder feature of
    that stride. When ``final_stride`` > 1 the logits are upsampled bilinearly to the
    input size (a light decoder for encoders whose finest feature is at H/2).
    ``refine(level, x)`` is called after the stages whose outputs are at the strides in
    ``PRIOR_STRIDES`` (level 0 = H/8, 1 = H/4, 2 = H/2); TRFE-Net injects its prior there.
    """

    def __init__(self, encoder_channels: Sequence[int], encoder_strides: Sequence[int], channels: Sequence[int],
                 final_stride: int = 1, norm: str = "batch") -> None:
        super().__init__()
        skips = dict(zip(encoder_strides, encoder_channels))
        strides = [encoder_strides[-1] // 2 ** (i + 1) for i in range(len(channels))]
        if strides[-1] != final_stride:
            raise ValueError(f"{len(channels)} decoder stages from stride {encoder_strides[-1]} end at {strides[-1]}, not {final_stride}")
        widths = [encoder_channels[-1], *channels]
        self.stages = nn.ModuleList(UpStage(widths[i], skips.get(s, 0), widths[i + 1], norm) for i, s in enumerate(strides))
        self.head = nn.Conv2d(channels[-1], 1, 1)
        self.final_stride = final_stride
        self.prior_levels = {i: PRIOR_STRIDES.index(s) for i, s in enumerate(strides) if s in PRIOR_STRIDES}
        self._skip_index = [list(encoder_strides).index(s) if s in skips else None for s in strides]

    def features(self, encoded: Sequence[torch.Tensor], refine: Refine | None = None) -> list[torch.Tensor]:
        """Every stage's output, coarsest first (after the prior, when ``refine`` is given)."""
        x = encoded[-1]
        outputs = []
        for i, stage in enumerate(self.stages):
            skip = self._skip_index[i]
            x = stage(x, encoded[skip] if skip is not None else None)
            if refine is not None and i in self.prior_levels:
                x = refine(self.prior_levels[i], x)
            outputs.append(x)
        return outputs

    def logits(self, last: torch.Tensor) -> torch.Tensor:
        """The head on the last stage's output, at input resolution."""
        out = self.head(last)
        if self.final_stride > 1:
            out = F.interpolate(out, scale_factor=self.final_stride, mode="bilinear", align_corners=False)
        return out

    def forward(self, encoded: Sequence[torch.Tensor], refine: Refine | None = None) -> torch.Tensor:
        return self.logits(self.features(encoded, refine)[-1])

    def prior_features(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """The stage outputs at H/8, H/4, H/2 (level order), for TRFE-Net B and C."""
        return [features[i] for i in sorted(self.prior_levels, key=self.prior_levels.get)]

    def prior_widths(self) -> list[int]:
        """Channels of the stage outputs at H/8, H/4, H/2 (level order)."""
        return [self.stages[i].block[3].out_channels for i in sorted(self.prior_levels, key=self.prior_levels.get)]
