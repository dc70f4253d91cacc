"""Building blocks shared by the U-Net family (Ronneberger et al., 2015).

Each block is the paper's: two 3x3 convolutions with BatchNorm and ReLU; the
encoder halves the resolution four times with 2x2 max-pooling, the decoder
doubles it with 2x2 stride-2 transposed convolutions and concatenates skips.
"""
from __future__ import annotations

import torch
from torch import nn


class ConvBlock(nn.Sequential):
    """(3x3 conv -> BatchNorm -> ReLU) x 2."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


def level_widths(width: int) -> list[int]:
    """Channels at full, 1/2, 1/4, 1/8 and 1/16 resolution: w, 2w, 4w, 8w, 16w."""
    return [width * 2**i for i in range(5)]


class Encoder(nn.Module):
    """Returns the features at all five resolutions, finest first."""

    def __init__(self, in_channels: int, width: int) -> None:
        super().__init__()
        widths = level_widths(width)
        self.blocks = nn.ModuleList([ConvBlock(in_channels, widths[0])])
        self.blocks.extend(ConvBlock(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = [self.blocks[0](x)]
        for block in self.blocks[1:]:
            features.append(block(self.pool(features[-1])))
        return features


class UpStage(nn.Module):
    """Transposed-conv upsampling, concatenation with the skip, then a block."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
        self.block = ConvBlock(2 * out_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.block(torch.cat([self.up(x), skip], dim=1))


class Decoder(nn.Module):
    """Four up-stages (to 1/8, 1/4, 1/2, full resolution) and a 1x1 logit head.

    ``refine`` is called after each of the first three stages with the stage
    index (0 = 1/8, 1 = 1/4, 2 = 1/2) and the stage output; TRFE-Net uses it to
    inject the thyroid-region prior. ``features`` returns every stage output so
    another decoder can read them.
    """

    def __init__(self, width: int) -> None:
        super().__init__()
        widths = level_widths(width)
        self.stages = nn.ModuleList(UpStage(widths[i + 1], widths[i]) for i in reversed(range(4)))
        self.head = nn.Conv2d(widths[0], 1, 1)

    def features(self, encoded: list[torch.Tensor], refine=None) -> list[torch.Tensor]:
        x = encoded[-1]
        outputs = []
        for i, stage in enumerate(self.stages):
            x = stage(x, encoded[-2 - i])
            if refine is not None and i < 3:
                x = refine(i, x)
            outputs.append(x)
        return outputs

    def forward(self, encoded: list[torch.Tensor], refine=None) -> torch.Tensor:
        return self.head(self.features(encoded, refine)[-1])
