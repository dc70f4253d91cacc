"""Architecture names -> networks and what they output: the one place a name becomes a model.

Each entry says which heads the network has, so no other code matches on a name: a
gland head (MT-Net, TRFE-Net) and a region prior that feeds the gland into the nodule
decoder (TRFE-Net). Every architecture can sit on any encoder of ``nets.ENCODERS`` and
can carry the findings heads (``nets.findings_head``).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from torch import nn

from ..nets import MTNet, TRFENet, UNet
from ..nets.encoders import ENCODERS, encoder_spec

PAPER_WIDTH = 64
MAX_WIDTH = 128  # twice the paper's 64 (plain TRFE-Net-A: about 173 M parameters, 0.7 GB)


@dataclass(frozen=True)
class ArchSpec:
    name: str
    title: str
    build: Callable[..., nn.Module]  # (in_channels, width, encoder, findings) -> network
    has_gland: bool
    has_prior: bool


ARCHITECTURES: dict[str, ArchSpec] = {
    spec.name: spec
    for spec in (
        ArchSpec("unet", "U-Net (Ronneberger et al., MICCAI 2015), nodule head only", UNet, False, False),
        ArchSpec("mtnet", "MT-Net: shared encoder, gland and nodule decoders, no region prior (TRFE-Net's baseline)",
                 MTNet, True, False),
        ArchSpec("trfe-a", "TRFE-Net-A: gland probability as the region prior of the nodule decoder",
                 partial(TRFENet, variant="a"), True, True),
        ArchSpec("trfe-b", "TRFE-Net-B: 1x1 convolution of the gland features as the region prior",
                 partial(TRFENet, variant="b"), True, True),
        ArchSpec("trfe-c", "TRFE-Net-C: 1x1 convolution of nodule and gland features as the region prior",
                 partial(TRFENet, variant="c"), True, True),
    )
}


def arch_spec(arch: str) -> ArchSpec:
    """The table entry of ``arch``; an unknown name lists the valid ones."""
    try:
        return ARCHITECTURES[arch]
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r}; choose one of: {', '.join(ARCHITECTURES)}") from None


def build_model(arch: str, width: int = PAPER_WIDTH, in_channels: int = 3, encoder: str = "plain",
                findings: Mapping[str, Sequence[str]] | None = None, norm: str = "batch") -> nn.Module:
    """Build an untrained network (encoder weights random too; see ``load_pretrained_encoder``);
    ``norm``: the decoders' normalisation, a key of ``nets.blocks.NORMS``."""
    spec = arch_spec(arch)
    encoder_spec(encoder)
    if not 1 <= width <= MAX_WIDTH:
        raise ValueError(f"width must be 1..{MAX_WIDTH} channels, got {width}")
    return spec.build(in_channels=in_channels, width=width, encoder=encoder, findings=findings, norm=norm)


def load_pretrained_encoder(model: nn.Module, encoder: str) -> bool:
    """Load the encoder's pretrained weights into ``model.encoder``; False when the encoder has none."""
    loader = encoder_spec(encoder).load_pretrained
    if loader is None:
        return False
    loader(model.encoder)
    return True


__all__ = ["ARCHITECTURES", "ENCODERS", "ArchSpec", "arch_spec", "build_model", "load_pretrained_encoder"]
