"""LiteMedSAM: segment the structure inside a box on a medical image (TinyViT encoder + SAM prompt decoder).

J. Ma, Y. He, F. Li, L. Han, C. You, B. Wang, "Segment anything in medical
images", Nature Communications 15, 654 (2024) (MedSAM); LiteMedSAM is its
lightweight version (bowang-lab/MedSAM, branch LiteMedSAM), distilled into a
TinyViT image encoder (K. Wu et al., ECCV 2022, as adapted by MobileSAM) and
fine-tuned end to end with box prompts on 2-D slices and frames of many
modalities, ultrasound among them. Prompt encoder and mask decoder are SAM's
(A. Kirillov et al., ICCV 2023).

The image is encoded once (the slow part, :meth:`LiteMedSAM.encode`); every prompt
is then decoded against that embedding (:meth:`LiteMedSAM.decode`, milliseconds).
Inputs are square ``image_size`` images scaled to [0, 1]; prompt coordinates are
pixels of that square. Sub-module and parameter names are those of the published
checkpoint (``image_encoder``, ``prompt_encoder``, ``mask_decoder``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn

from .sam_mask_decoder import MaskDecoder
from .sam_prompt_encoder import PromptEncoder
from .tinyvit import TinyViT
from .two_way_transformer import TwoWayTransformer


@dataclass(frozen=True)
class LiteMedSAMConfig:
    """The network's dimensions; the defaults are LiteMedSAM's (9.8 M parameters)."""

    image_size: int = 256  # square input; the embedding is image_size / 4 on a side
    embed_dims: tuple[int, ...] = (64, 128, 160, 320)
    depths: tuple[int, ...] = (2, 2, 6, 2)
    num_heads: tuple[int, ...] = (2, 4, 5, 10)
    window_sizes: tuple[int, ...] = (7, 7, 14, 7)
    mlp_ratio: float = 4.0
    mbconv_expand_ratio: float = 4.0
    local_conv_size: int = 3
    prompt_dim: int = 256  # channels of the image embedding, the prompt tokens and the decoder
    mask_in_chans: int = 16
    decoder_depth: int = 2
    decoder_heads: int = 8
    decoder_mlp_dim: int = 2048
    num_multimask_outputs: int = 3
    iou_head_depth: int = 3
    iou_head_hidden_dim: int = 256

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LiteMedSAMConfig":
        """Unknown keys are an error: a file describing another network must not load as this one."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown LiteMedSAM settings: {', '.join(sorted(unknown))}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


class LiteMedSAM(nn.Module):
    def __init__(self, config: LiteMedSAMConfig = LiteMedSAMConfig()) -> None:
        super().__init__()
        if config.image_size % 4:
            raise ValueError(f"image_size must be a multiple of 4, got {config.image_size}")
        self.config = config
        side = config.image_size
        self.image_encoder = TinyViT(
            embed_dims=config.embed_dims, depths=config.depths, num_heads=config.num_heads,
            window_sizes=config.window_sizes, mlp_ratio=config.mlp_ratio,
            mbconv_expand_ratio=config.mbconv_expand_ratio, local_conv_size=config.local_conv_size,
            out_channels=config.prompt_dim,
        )
        self.prompt_encoder = PromptEncoder(config.prompt_dim, (side // 4, side // 4), (side, side), config.mask_in_chans)
        self.mask_decoder = MaskDecoder(
            config.prompt_dim,
            TwoWayTransformer(config.decoder_depth, config.prompt_dim, config.decoder_heads, config.decoder_mlp_dim),
            config.num_multimask_outputs, config.iou_head_depth, config.iou_head_hidden_dim,
        )

    @property
    def image_size(self) -> int:
        return self.config.image_size

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) in [0, 1] -> (N, prompt_dim, S/4, S/4)."""
        return self.image_encoder(images)

    def decode(
        self,
        embeddings: torch.Tensor,
        boxes: torch.Tensor | None = None,
        points: tuple[torch.Tensor, torch.Tensor] | None = None,
        multimask_output: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Prompts -> (mask logits (B, M, S, S), predicted IoU (B, M)) against one or B embeddings.

        ``boxes`` (B, 4) x0, y0, x1, y1 and ``points`` (coords (B, N, 2) x, y; labels (B, N), 1 inside,
        0 outside) in pixels of the S x S input, corners and clicks on pixel indices.
        """
        sparse, dense = self.prompt_encoder(points=points, boxes=boxes)
        return self.mask_decoder(embeddings, self.prompt_encoder.dense_pe(), sparse, dense, multimask_output)

    def forward(self, images: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """One box per image -> (N, 1, S, S) mask logits."""
        return self.decode(self.encode(images), boxes)[0]
