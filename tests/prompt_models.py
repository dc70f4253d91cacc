"""Tiny prompt models for the tests: a randomly initialised LiteMedSAM and a box-echo stand-in."""
from __future__ import annotations

import dataclasses

import torch

from thyroid_studio.engine.nets.litemedsam import LiteMedSAM, LiteMedSAMConfig

TINY = LiteMedSAMConfig(
    image_size=64, embed_dims=(8, 16, 16, 32), depths=(1, 1, 1, 1), num_heads=(1, 2, 2, 2), window_sizes=(7, 7, 7, 7),
    prompt_dim=32, mask_in_chans=4, decoder_heads=2, decoder_mlp_dim=64, iou_head_hidden_dim=32,
)


def tiny_litemedsam(seed: int = 0) -> LiteMedSAM:
    torch.manual_seed(seed)
    return LiteMedSAM(TINY).eval()


class BoxEcho(LiteMedSAM):
    """Answers every box with exactly the pixels it covers in the model square (where the image is not black).

    Whatever the engine does to boxes on the way in and to logits on the way out shows
    in the frame mask, so tests can check the coordinate mapping end to end.
    """

    def __init__(self, image_size: int = 256) -> None:
        super().__init__(dataclasses.replace(TINY, image_size=image_size))
        self.encoded = 0

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        self.encoded += 1
        return images.amax(dim=1, keepdim=True)  # (N, 1, S, S): the image itself, not a real embedding

    def decode(self, embeddings, boxes=None, points=None, multimask_output=False):
        size = self.image_size
        ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
        x0, y0, x1, y1 = boxes[0].tolist()
        inside = (xs >= x0 - 0.5) & (xs <= x1 + 0.5) & (ys >= y0 - 0.5) & (ys <= y1 + 0.5)
        inside &= embeddings[0, 0] > 0
        logits = torch.where(inside, 10.0, -10.0)[None, None]
        return logits, torch.ones(1, 1)
