"""What the segmentation networks share: an encoder from ``encoders.ENCODERS``, decoders built on it, and
their normalisation.

With ``norm="group"`` the decoders use GroupNorm and the encoder's BatchNorm layers keep their
pretrained statistics during training (they stay in eval mode), so no layer's statistics mix the two
domains of a training batch (DDTI nodule frames, TG3K gland frames). At inference both are the same.
"""
from __future__ import annotations

from torch import nn

from .blocks import NORMS, Decoder
from .encoders import encoder_spec


class SegmentationNet(nn.Module):
    """Base of U-Net, MT-Net and TRFE-Net: ``self.encoder`` and :meth:`decoder` for each head."""

    def __init__(self, in_channels: int, width: int, encoder: str, norm: str) -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"unknown normalisation {norm!r}; choose one of {', '.join(NORMS)}")
        self._spec = encoder_spec(encoder)
        self._width = width
        self.norm = norm
        self.encoder = self._spec.build(in_channels, width)

    def decoder(self) -> Decoder:
        """A new decoder on this network's encoder."""
        spec = self._spec
        return Decoder(self.encoder.channels, self.encoder.strides, spec.decoder_channels(self._width),
                       spec.final_stride, self.norm)

    def train(self, mode: bool = True) -> "SegmentationNet":
        super().train(mode)
        if mode and self.norm == "group":
            for layer in self.encoder.modules():
                if isinstance(layer, nn.BatchNorm2d):
                    layer.eval()
        return self
