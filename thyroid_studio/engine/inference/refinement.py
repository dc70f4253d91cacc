"""Two-stage segmentation: a network finds the nodule, LiteMedSAM redraws it from the box around it.

:class:`RefinedSegmenter` wraps a :class:`~.inference.Segmenter` and offers the
same ``segment(images) -> list[Segmentation]``, ``__call__``, ``meta`` and
``has_gland``, so the batch loop, ``evaluate`` and the app take either. For each
frame: the first stage's largest nodule component, its box grown by a margin, a
LiteMedSAM box prompt; the result's nodule mask and probability are LiteMedSAM's,
the gland is the first stage's. A frame where the first stage finds nothing keeps
the first stage's (empty) result. Measured with ``bench/bench_prompt.py`` (bench/README.md):
+3.0 Dice points over the shipped TRFE-Net on DDTI fold 0; it is off unless asked for,
since it costs one image embedding (about a second on a CPU) per frame.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from .. import geometry
from ..models.checkpoint import ModelMeta
from ..models.library import default_prompt_model
from .prompting import PromptSegmenter, box_around
from .segmenter import Segmentation, Segmenter, algorithm

REFINEMENTS = ("none", "medsam")  # the --refine choices; "medsam" = a LiteMedSAM box prompt
MARGIN_PX = 10  # around the first stage's component: best of 0/5/10/15/20 px on DDTI fold 0 (bench/README.md)


class RefinedSegmenter:
    """A Segmenter whose nodule masks LiteMedSAM redraws from the box of their largest component."""

    def __init__(self, first: Segmenter, prompter: PromptSegmenter, margin: float = MARGIN_PX) -> None:
        self.first = first
        self.prompter = prompter
        self.margin = margin
        base = first.meta.name or first.meta.arch
        self.meta: ModelMeta = dataclasses.replace(first.meta, name=f"{base}+medsam")

    @property
    def has_gland(self) -> bool:
        return self.first.has_gland

    def refine(self, image: np.ndarray, first: Segmentation) -> Segmentation:
        """LiteMedSAM's mask for the box of ``first``'s largest component (``first``'s mask when that is empty)."""
        box = box_around(geometry.largest_component(first.nodule_mask), self.margin)
        if box is None:
            return dataclasses.replace(first, model=algorithm(self.meta))
        probability = self.prompter.probability(self.prompter.embed(image), box)
        return dataclasses.replace(first, nodule_prob=probability, nodule_mask=probability > 0.5,
                                   model=algorithm(self.meta))

    def segment(self, images: Sequence[np.ndarray]) -> list[Segmentation]:
        return [self.refine(image, result) for image, result in zip(images, self.first.segment(images))]

    def __call__(self, image: np.ndarray) -> Segmentation:
        return self.segment([image])[0]


def with_refinement(segmenter: Segmenter, refinement: str) -> Segmenter | RefinedSegmenter:
    """``segmenter`` with the named second stage on its device (``"none"``: itself); the shipped prompt model is
    loaded for ``"medsam"`` (a CheckpointError when it is missing)."""
    if refinement not in REFINEMENTS:
        raise ValueError(f"unknown refinement {refinement!r}; choose one of {', '.join(REFINEMENTS)}")
    if refinement == "none":
        return segmenter
    return RefinedSegmenter(segmenter, PromptSegmenter.from_checkpoint(default_prompt_model(), device=segmenter.device))
