"""Box prompts: draw a box on a frame, get the structure inside it as a mask (LiteMedSAM).

:meth:`PromptSegmenter.embed` runs the image encoder once per frame (about a second
on a CPU; the app runs it in the background when a frame opens) and keeps the
embedding in a small LRU cache keyed by the identity of the frame's pixel array;
:meth:`PromptSegmenter.segment` then turns a box into a mask at the frame's
resolution in milliseconds. :func:`propagate` carries a mask through the frames of
a clip, each frame prompted with the box of the mask found on the one before.

Frames are prepared as LiteMedSAM was trained: the longest side resized to
``image_size`` (256; area interpolation), min-max scaled to [0, 1], zero-padded at
the bottom and right to a square, gray repeated over 3 channels. Boxes go through
the same resize; the mask logits come back by cropping the padding and resizing
bilinearly to the frame (the model's own ``predict_array`` helper stretches frames
to a square instead, which distorts them; it is not used).

Boxes are ``(x0, y0, x1, y1)`` in frame pixels with ``x1``/``y1`` exclusive, as in
``geometry.measure(...).bbox`` and the ``segment`` command's CSV.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ..models.prompt_checkpoint import load_prompt_model
from ..nets.litemedsam import LiteMedSAM
from ..preprocessing import Box, Geometry, restore
from .segmenter import resolve_device

BoxXYXY = tuple[float, float, float, float]  # x0, y0, x1, y1 in frame pixels, x1/y1 exclusive
DEFAULT_MARGIN_PX = 5  # added around a mask's box when a mask, not a person, makes the prompt
CACHE_SIZE = 8  # embeddings kept (4 MB each at LiteMedSAM's size)


# ---------------------------------------------------------------- frame <-> model square


def model_geometry(frame_shape: tuple[int, int], size: int) -> Geometry:
    """The whole frame, resized so its longest side is ``size``, placed at the top-left of a ``size`` square."""
    height, width = frame_shape
    scale = size / max(height, width)
    new_h, new_w = max(1, int(height * scale + 0.5)), max(1, int(width * scale + 0.5))
    return Geometry((height, width), Box(0, height, 0, width), Box(0, new_h, 0, new_w))


def model_input(pixels: np.ndarray, geometry: Geometry, size: int) -> np.ndarray:
    """Frame pixels (gray or RGB uint8) -> (3, size, size) float32: resized, min-max to [0, 1], zero-padded."""
    rgb = np.repeat(pixels[..., None], 3, axis=2) if pixels.ndim == 2 else pixels[..., :3]
    content = geometry.content
    resized = cv2.resize(np.ascontiguousarray(rgb), (content.width, content.height), interpolation=cv2.INTER_AREA)
    resized = resized.reshape(content.height, content.width, 3).astype(np.float32)
    low, high = float(resized.min()), float(resized.max())
    out = np.zeros((3, size, size), np.float32)
    out[:, : content.height, : content.width] = ((resized - low) / max(high - low, 1e-8)).transpose(2, 0, 1)
    return out


def _scale(geometry: Geometry) -> tuple[float, float]:
    """Model pixels per frame pixel along x and y."""
    return geometry.content.width / geometry.frame_shape[1], geometry.content.height / geometry.frame_shape[0]


def box_to_model(box: BoxXYXY, geometry: Geometry) -> np.ndarray:
    """A frame box -> SAM's (x0, y0, x1, y1) in the model square: the corner pixels, both inclusive.

    The box covers the frame region [x0, x1) x [y0, y1); the resize maps that region to
    [x0 * sx, x1 * sx) x [y0 * sy, y1 * sy), whose first and last pixels are the corners
    SAM was trained with (boxes taken from masks as min and max pixel indices).
    """
    sx, sy = _scale(geometry)
    x0, y0, x1, y1 = box
    left, top = x0 * sx, y0 * sy
    return np.array([left, top, max(left, x1 * sx - 1), max(top, y1 * sy - 1)], np.float32)


def clip_box(box: BoxXYXY, frame_shape: tuple[int, int]) -> BoxXYXY:
    """The part of ``box`` inside the frame; a ValueError when nothing is left (or the numbers are not finite)."""
    height, width = frame_shape
    if not all(np.isfinite(v) for v in box):
        raise ValueError(f"box {tuple(box)} has a coordinate that is not a number")
    x0, y0, x1, y1 = max(0.0, box[0]), max(0.0, box[1]), min(float(width), box[2]), min(float(height), box[3])
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"box {tuple(box)} is empty or outside the {width}x{height} frame (x1 > x0 and y1 > y0 needed)")
    return x0, y0, x1, y1


def box_around(mask: np.ndarray, margin: float = DEFAULT_MARGIN_PX) -> BoxXYXY | None:
    """The box of a mask's pixels grown by ``margin`` on every side and clipped to the frame; None if empty."""
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return None
    box = (xs.min() - margin, ys.min() - margin, xs.max() + 1 + margin, ys.max() + 1 + margin)
    return clip_box(tuple(float(v) for v in box), mask.shape[:2])


# ---------------------------------------------------------------- the segmenter


@dataclass(frozen=True, eq=False)
class Embedding:
    """One frame's image embedding and how the frame sits in the model square."""

    features: torch.Tensor  # (1, C, S/4, S/4) on the model's device
    geometry: Geometry

    @property
    def frame_shape(self) -> tuple[int, int]:
        return self.geometry.frame_shape


class PromptSegmenter:
    """A LiteMedSAM in eval mode with an embedding cache: ``embed`` once per frame, then ``segment`` per box.

    The cache is keyed by the identity of the pixel array passed to :meth:`embed` (it holds
    the array, so an id is never reused while cached); pass the same ``Frame.pixels`` again to
    hit it. It is safe to embed on a worker thread while another thread segments.
    """

    def __init__(self, model: LiteMedSAM, device: str | torch.device | None = None, cache_size: int = CACHE_SIZE) -> None:
        self.device = resolve_device(device)
        self.model = model.to(self.device, memory_format=torch.channels_last).eval()
        self.cache_size = cache_size
        self._cache: OrderedDict[int, tuple[np.ndarray, Embedding]] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: str | torch.device | None = None,
                        **kwargs) -> "PromptSegmenter":
        """Load a prompt-model file (any failure is a CheckpointError) onto ``device``."""
        device = resolve_device(device)
        model, _ = load_prompt_model(path, device)
        return cls(model, device=device, **kwargs)

    @property
    def image_size(self) -> int:
        return self.model.image_size

    def cached(self, pixels: np.ndarray) -> Embedding | None:
        """The cached embedding of this very array, or None (never computes)."""
        with self._lock:
            entry = self._cache.get(id(pixels))
            if entry is None or entry[0] is not pixels:
                return None
            self._cache.move_to_end(id(pixels))
            return entry[1]

    def embed(self, pixels: np.ndarray, cache: bool = True) -> Embedding:
        """The frame's embedding: from the cache, or computed (the slow step) and, if ``cache``, kept."""
        found = self.cached(pixels)
        if found is not None:
            return found
        geometry = model_geometry(pixels.shape[:2], self.image_size)
        x = torch.from_numpy(model_input(pixels, geometry, self.image_size))[None]
        x = x.to(self.device).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            embedding = Embedding(self.model.encode(x), geometry)
        if cache and self.cache_size > 0:
            with self._lock:
                self._cache[id(pixels)] = (pixels, embedding)
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return embedding

    def logits(self, embedding: Embedding, box: BoxXYXY) -> np.ndarray:
        """(H, W) float32 mask logits at the frame's resolution for one box (clipped to the frame)."""
        box = clip_box(box, embedding.frame_shape)
        boxes = torch.from_numpy(box_to_model(box, embedding.geometry))[None].to(self.device)
        with torch.inference_mode():
            low_res, _ = self.model.decode(embedding.features, boxes=boxes)
        return restore(low_res[0, 0].float().cpu().numpy(), embedding.geometry)

    def probability(self, embedding: Embedding, box: BoxXYXY) -> np.ndarray:
        """(H, W) float32 in [0, 1]: the sigmoid of :meth:`logits`."""
        return torch.sigmoid(torch.from_numpy(self.logits(embedding, box))).numpy()

    def segment(self, embedding: Embedding, box: BoxXYXY) -> np.ndarray:
        """(H, W) bool mask of the structure in ``box`` (probability > 0.5)."""
        return self.logits(embedding, box) > 0


def propagate(
    prompter: PromptSegmenter,
    frames: Iterable[np.ndarray],
    start_mask: np.ndarray,
    margin: float = DEFAULT_MARGIN_PX,
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[np.ndarray]:
    """Carry ``start_mask`` through ``frames`` (the clip's pixels after the start frame, in order).

    Each frame is prompted with the box of the previous mask grown by ``margin``; its mask
    is yielded. Stops when a mask comes out empty (the structure left the view; the empty
    mask is not yielded), when ``should_stop()`` is true before a frame, or at the end.
    Embeddings are computed without filling the cache.
    """
    mask = start_mask
    for pixels in frames:
        box = box_around(mask, margin)
        if box is None or (should_stop and should_stop()):
            return
        if pixels.shape[:2] != mask.shape[:2]:
            raise ValueError(f"frame of {pixels.shape[1]}x{pixels.shape[0]} after a mask of {mask.shape[1]}x{mask.shape[0]}")
        mask = prompter.segment(prompter.embed(pixels, cache=False), box)
        if not mask.any():
            return
        yield mask
