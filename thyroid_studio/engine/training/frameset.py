"""The frames a training sees: read once, cached at the network's input size, batched with augmentation.

Every frame is read, cropped to the ultrasound region and resized by
``preprocessing.crop_and_resize`` (exactly as at inference) and kept as uint8 with its
mask; each step augments the cached arrays and normalises them with
``preprocessing.to_input``. Nodule frames also carry their findings (``findings.FIELDS``,
class indices, -1 where unknown) for the classification heads, and, where one is given, a gland
mask of their own (the DDTI gland pseudo-labels, tools/gland_labels.py).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..datasets.layouts import DatasetError, Sample, read_mask
from ..findings.fields import Findings
from ..io.frames import read_frame
from ..models.checkpoint import ModelMeta
from ..preprocessing import crop_and_resize, prepare_mask, to_input
from .augment import Compose

UNKNOWN = -1


@dataclass
class FrameSet:
    """Frames cropped and resized once to the input size (uint8), with their masks at that size.

    ``labels`` holds one column per findings head (``"suspicious"`` 0/1, then each field's
    class index; -1 unknown); ``originals`` keeps the full frames and masks of validation
    sets, which are scored at the original resolution.
    """

    keys: list[str]
    images: np.ndarray  # (N, H, W) uint8
    masks: np.ndarray  # (N, H, W) uint8 0/1
    labels: dict[str, np.ndarray] = field(default_factory=dict)  # head -> (N,) int64
    originals: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # (frame, bool mask)
    spacings: list[tuple[float, float] | None] = field(default_factory=list)
    glands: np.ndarray | None = None  # (N, H, W) uint8 0/1: nodule frames' own gland masks, where known
    gland_known: np.ndarray | None = None  # (N,) bool: which frames have one

    def __len__(self) -> int:
        return len(self.keys)

    def known(self, head: str) -> np.ndarray:
        """Indices of the frames whose ``head`` label is known."""
        return np.flatnonzero(self.labels[head] != UNKNOWN) if head in self.labels else np.zeros(0, np.int64)


def read_sample(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    """(gray uint8 frame, bool mask) of a labelled sample; DatasetError when it has no mask."""
    if sample.mask is None:
        raise DatasetError(f"{sample.image}: no mask; training needs a mask for every frame")
    return read_frame(sample.image).gray(), read_mask(sample.mask)


def label_columns(keys: Sequence[str], labels: Mapping[str, Findings], vocabulary: Mapping[str, Sequence[str]]) -> dict[str, np.ndarray]:
    """The findings of ``keys`` as class-index columns: "suspicious" (0/1) and one per field; -1 unknown."""
    if not vocabulary:
        return {}
    columns = {"suspicious": np.full(len(keys), UNKNOWN, np.int64)}
    columns.update({name: np.full(len(keys), UNKNOWN, np.int64) for name in vocabulary})
    for i, key in enumerate(keys):
        findings = labels.get(key)
        if findings is None:
            continue
        if findings.suspicious is not None:
            columns["suspicious"][i] = int(findings.suspicious)
        for name, classes in vocabulary.items():
            value = findings.get(name)
            if value is not None:
                columns[name][i] = list(classes).index(value)
    return columns


def load_frames(samples: Sequence[Sample], meta: ModelMeta, keep_originals: bool = False,
                labels: Mapping[str, Findings] | None = None, glands: Mapping[str, Path] | None = None) -> FrameSet:
    """Read, crop and resize every sample once (the cache that augmentation works on); ``glands`` maps
    keys to gland masks of the same frames (read and placed as the frame is)."""
    keys, images, masks, originals, gland_masks = [], [], [], [], []
    height, width = meta.input_size
    for sample in samples:
        frame, mask = read_sample(sample)
        placed, geometry = crop_and_resize(frame, meta, crop=True)
        keys.append(sample.key)
        images.append(placed)
        masks.append(prepare_mask(mask, geometry, meta).astype(np.uint8))
        if keep_originals:
            originals.append((frame, mask.astype(bool)))
        if glands is not None:
            path = glands.get(sample.key)
            gland = read_mask(path) if path is not None else None
            if gland is not None and gland.shape != mask.shape:
                raise DatasetError(f"{path}: gland mask {gland.shape[1]}x{gland.shape[0]} does not fit frame "
                                   f"{sample.key} ({mask.shape[1]}x{mask.shape[0]})")
            gland_masks.append(None if gland is None else prepare_mask(gland, geometry, meta).astype(np.uint8))
    known = np.array([g is not None for g in gland_masks], bool) if glands is not None else None
    return FrameSet(
        keys,
        np.stack(images) if images else np.zeros((0, height, width), np.uint8),
        np.stack(masks) if masks else np.zeros((0, height, width), np.uint8),
        label_columns(keys, labels or {}, meta.findings),
        originals,
        glands=np.stack([g if g is not None else np.zeros((height, width), np.uint8) for g in gland_masks])
        if gland_masks else None,
        gland_known=known,
    )


def evenly_spaced(samples: Sequence[Sample], count: int) -> list[Sample]:
    """``count`` samples spread over the whole list (all of them when ``count`` is 0 or larger)."""
    if count <= 0 or count >= len(samples):
        return list(samples)
    return [samples[i] for i in np.linspace(0, len(samples) - 1, count).round().astype(int)]


def epoch_pairs(n_nodule: int, n_gland: int, epoch: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(nodule order, gland partner of each) for one epoch: a fresh permutation and fresh random partners.

    Deterministic in (seed, epoch) so every DDP process and a resumed run draw the same pairs.
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(n_nodule)
    partners = rng.integers(0, n_gland, n_nodule) if n_gland else np.zeros(0, dtype=np.int64)
    return order, partners


def shard(indices: np.ndarray, rank: int, world: int) -> np.ndarray:
    """This process's share, as DistributedSampler does: pad by wrapping to a multiple of ``world``, then stride."""
    if world == 1:
        return indices
    total = math.ceil(len(indices) / world) * world
    padded = np.resize(indices, total)
    return padded[rank::world]


@dataclass
class Batch:
    """One step's frames: normalised inputs, masks, which frames are nodule frames, and findings labels.

    ``masks`` is each frame's own mask (the nodule on nodule frames, the gland on gland frames);
    ``glands`` is the gland target of every frame whose gland is known (``gland_known``): the mask
    itself on gland frames, the frame's gland pseudo-label on nodule frames that have one.
    """

    inputs: torch.Tensor  # (N, C, H, W) float32
    masks: torch.Tensor  # (N, 1, H, W) float32 0/1
    is_nodule: torch.Tensor  # (N,) bool: nodule frame (else gland frame)
    labels: dict[str, torch.Tensor]  # head -> (N,) int64, -1 unknown (always -1 on gland frames)
    glands: torch.Tensor  # (N, 1, H, W) float32 0/1
    gland_known: torch.Tensor  # (N,) bool

    def to(self, device: torch.device) -> "Batch":
        return Batch(self.inputs.to(device).contiguous(memory_format=torch.channels_last), self.masks.to(device),
                     self.is_nodule.to(device), {k: v.to(device) for k, v in self.labels.items()},
                     self.glands.to(device), self.gland_known.to(device))


Item = tuple[FrameSet, int, bool]  # (frames, index, is a nodule frame)


def make_batch(items: Sequence[Item], meta: ModelMeta, augmentations: Mapping[bool, Compose], rng: np.random.Generator) -> Batch:
    """Augment (nodule and gland frames each with their own pipeline) and normalise cached frames into a Batch."""
    inputs, masks, glands, known = [], [], [], []
    heads = ["suspicious", *meta.findings] if meta.findings else []
    labels = {head: np.full(len(items), UNKNOWN, np.int64) for head in heads}
    for i, (frames, index, nodule) in enumerate(items):
        own_gland = nodule and frames.gland_known is not None and bool(frames.gland_known[index])
        targets = [frames.masks[index], frames.glands[index]] if own_gland else [frames.masks[index]]
        image, augmented = augmentations[nodule](frames.images[index], targets, rng)
        inputs.append(to_input(image, meta))
        masks.append(augmented[0][None].astype(np.float32))
        glands.append((augmented[1] if own_gland else augmented[0] if not nodule else np.zeros_like(augmented[0]))[None]
                      .astype(np.float32))
        known.append(own_gland or not nodule)
        for head in heads:
            if head in frames.labels:
                labels[head][i] = frames.labels[head][index]
    return Batch(torch.from_numpy(np.stack(inputs)), torch.from_numpy(np.stack(masks)),
                 torch.tensor([nodule for _, _, nodule in items], dtype=torch.bool),
                 {head: torch.from_numpy(column) for head, column in labels.items()},
                 torch.from_numpy(np.stack(glands)), torch.tensor(known, dtype=torch.bool))


def class_weights(sets: Sequence[FrameSet], vocabulary: Mapping[str, Sequence[str]]) -> dict[str, torch.Tensor]:
    """Inverse-frequency weights per class of each findings head over the labelled frames of ``sets``
    (mean 1 over the known labels), for the skewed categories.

    A class absent from the training labels gets weight 0 (it cannot be learnt from them).
    """
    if not vocabulary:
        return {}
    weights = {}
    for head in ["suspicious", *vocabulary]:
        classes = 2 if head == "suspicious" else len(vocabulary[head])
        known = np.concatenate([f.labels[head][f.labels[head] != UNKNOWN] for f in sets if head in f.labels] or [np.zeros(0, np.int64)])
        counts = np.bincount(known, minlength=classes).astype(np.float64)
        w = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / max(1, (counts > 0).sum()), 0.0)
        weights[head] = torch.tensor(w, dtype=torch.float32)
    return weights
