"""Architecture names -> network constructors: the one place a name becomes a model."""
from __future__ import annotations

from typing import Callable

from torch import nn

from .nets import MTNet, TRFENet, UNet

ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "unet": UNet,
    "mtnet": MTNet,
    "trfe-a": lambda in_channels, width: TRFENet(in_channels, width, variant="a"),
    "trfe-b": lambda in_channels, width: TRFENet(in_channels, width, variant="b"),
    "trfe-c": lambda in_channels, width: TRFENet(in_channels, width, variant="c"),
}

PAPER_WIDTH = 64


def build_model(arch: str, width: int = PAPER_WIDTH, in_channels: int = 3) -> nn.Module:
    """Build an untrained network by registry name; an unknown name lists the valid ones."""
    try:
        constructor = ARCHITECTURES[arch]
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r}; choose one of: {', '.join(ARCHITECTURES)}") from None
    if width < 1:
        raise ValueError(f"width must be a positive channel count, got {width}")
    return constructor(in_channels=in_channels, width=width)
