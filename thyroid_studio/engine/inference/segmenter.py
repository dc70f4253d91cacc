"""Segmenter: frame pixels -> nodule (and gland) probability maps and masks at the frame's size.

prepare (crop, contrast, resize, normalise) -> one batched forward pass ->
restore to the frame -> threshold -> optional post-processing. The GUI, the
``segment`` and ``evaluate`` commands and the benchmark all go through it, so
every caller sees the same masks for the same frame.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from .. import geometry
from ..findings.fields import PredictedFindings
from ..io.dicom_seg import Algorithm
from ..models.checkpoint import ModelMeta, load_checkpoint
from ..models.roles import WHOLE_IMAGE_GLAND
from ..nets.findings_head import SUSPICIOUS
from ..preprocessing import prepare, restore

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
_BAND_ROWS = 512  # rows summed at a time (mean_confidence)


@dataclass(frozen=True)
class PostProcess:
    """Clean-ups applied to the nodule mask, in this order: inside gland, largest component, fill holes.
    Frozen, so the shared default of ``Segmenter`` can never be changed by one caller for all."""

    largest_only: bool = False
    fill_holes: bool = False
    inside_gland: bool = False




@dataclass
class Segmentation:
    """One frame's result, at the frame's resolution."""

    nodule_prob: np.ndarray  # (H, W) float32 in [0, 1]
    nodule_mask: np.ndarray  # (H, W) bool
    gland_prob: np.ndarray | None = None
    gland_mask: np.ndarray | None = None
    findings: PredictedFindings | None = None  # models with findings heads only
    gland_share: float | None = None  # share of the ultrasound image (the region fed to the network) marked gland; None: not measured
    model: Algorithm | None = None  # the model that made it (name, version) as a DICOM SEG names it; None: unknown

    @property
    def informative_gland(self) -> np.ndarray | None:
        """The gland mask worth drawing as a gland: None without a gland head, and None where the model marks
        (nearly) the whole ultrasound image -- it does on frames zoomed onto the thyroid, as DDTI's are
        (docs/training.md) -- since an outline of the image would pretend to be a gland."""
        if self.gland_mask is None or (self.gland_share is not None and self.gland_share >= WHOLE_IMAGE_GLAND):
            return None
        return self.gland_mask

    def lobe(self, nodule: np.ndarray | None = None) -> np.ndarray | None:
        """The component of the informative gland that holds ``nodule`` (the model's own nodule by default;
        the largest component when there is none): the lobe whose size a report states. None without an
        informative gland."""
        gland = self.informative_gland
        if gland is None or not gland.any():
            return None
        nodule = self.nodule_mask if nodule is None else nodule
        if not nodule.any():
            return geometry.largest_component(gland)
        rows, cols = np.nonzero(nodule)
        return geometry.select_component(gland, (float(cols.mean()), float(rows.mean())))

    def mean_confidence(self) -> float | None:
        """Mean nodule probability inside the mask; ``None`` for an empty mask. Summed a band of rows at a time, so a
        frame-sized mask costs no frame-sized copy of the probabilities."""
        total, count = 0.0, 0
        for start in range(0, len(self.nodule_mask), _BAND_ROWS):
            inside = self.nodule_mask[start : start + _BAND_ROWS]
            total += float(self.nodule_prob[start : start + _BAND_ROWS][inside].sum(dtype=np.float64))
            count += int(np.count_nonzero(inside))
        return total / count if count else None


def algorithm(meta: ModelMeta) -> Algorithm:
    """A model as a DICOM SEG identifies the algorithm of its masks: name (the architecture without one), version."""
    return Algorithm(meta.name or meta.arch, meta.version)


def network_threads() -> int:
    """Torch CPU threads for a network that shares the machine with other busy threads (the batch loop's
    reader and writer, the app's GUI): one core fewer than the machine has, at least one.

    PyTorch's default (one per core) lets its OpenMP threads fight those threads for the cores; on a
    busy 2-core machine that made ``segment`` several times slower (bench/README.md).
    """
    return max(1, (os.cpu_count() or 1) - 1)


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def resolve_device(name: str | torch.device | None = None) -> torch.device:
    """``None``/``"auto"``: CUDA, then MPS, then CPU; a named device that is not available is a ValueError."""
    if isinstance(name, torch.device):
        return name
    if name in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    kind = str(name).split(":")[0]
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": _mps_available()}
    if kind not in available:
        raise ValueError(f"unknown device {name!r}; choose one of {', '.join(DEVICE_CHOICES)}")
    if not available[kind]:
        raise ValueError(f"device {name!r} is not available on this machine (PyTorch {torch.__version__}); use --device cpu or auto")
    return torch.device(name)


def _autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """Mixed precision on CUDA only (bfloat16 where supported); CPU and MPS run in float32."""
    if device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


class Segmenter:
    """A network in eval mode with the settings it needs to segment whole frames."""

    def __init__(
        self,
        model: nn.Module,
        meta: ModelMeta,
        device: str | torch.device | None = None,
        crop: bool = True,
        contrast: str | None = None,
        postprocess: PostProcess = PostProcess(),
        threshold: float | None = None,
        flip_tta: bool = False,
    ) -> None:
        """``threshold`` overrides the checkpoint's nodule threshold; the gland keeps the checkpoint's.

        ``flip_tta`` averages the probabilities of each frame and its mirror image (test-time augmentation).
        """
        if postprocess.inside_gland and not meta.has_gland:
            raise ValueError(f"keeping the nodule inside the gland needs a model with a gland head; {meta.arch} has none")
        self.device = resolve_device(device)
        self.model = model.to(self.device, memory_format=torch.channels_last).eval()
        self.meta = meta
        self.crop = crop
        self.contrast = contrast
        self.postprocess = postprocess
        self.threshold = meta.threshold if threshold is None else threshold
        self.flip_tta = flip_tta

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: str | torch.device | None = None, **kwargs) -> "Segmenter":
        """Load a checkpoint (any failure is a CheckpointError) onto ``device`` and wrap it."""
        device = resolve_device(device)
        model, meta = load_checkpoint(path, device)
        return cls(model, meta, device=device, **kwargs)

    @property
    def has_gland(self) -> bool:
        return self.meta.has_gland

    def _probabilities(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Sigmoid maps (N, H, W) per segmentation head; sigmoid/softmax per findings head."""
        with torch.inference_mode(), _autocast(self.device):
            out = self.model(x)
        probs = {head: torch.sigmoid(out[head].float())[:, 0] for head in ("nodule", "gland") if head in out}
        for name, logits in out.get("findings", {}).items():
            probs[name] = torch.sigmoid(logits.float()) if name == SUSPICIOUS else torch.softmax(logits.float(), dim=1)
        return probs

    def _forward(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """(N, C, H, W) float32 -> probabilities per head on the CPU (with flip TTA: the mean of both views)."""
        x = torch.from_numpy(batch).to(self.device).contiguous(memory_format=torch.channels_last)
        probs = self._probabilities(x)
        if self.flip_tta:
            mirrored = self._probabilities(torch.flip(x, dims=[3]))
            probs = {k: (v + (torch.flip(mirrored[k], dims=[2]) if v.ndim == 3 else mirrored[k])) / 2 for k, v in probs.items()}
        return {k: v.cpu().numpy() for k, v in probs.items()}

    def _findings(self, probs: dict[str, np.ndarray], i: int) -> PredictedFindings | None:
        if not self.meta.findings:
            return None
        return PredictedFindings(
            float(probs[SUSPICIOUS][i]),
            {name: dict(zip(classes, map(float, probs[name][i]))) for name, classes in self.meta.findings.items()},
        )

    def _clean(self, mask: np.ndarray, gland_mask: np.ndarray | None) -> np.ndarray:
        post = self.postprocess
        if post.inside_gland and gland_mask is not None:
            mask = geometry.keep_inside(mask, gland_mask)
        if post.largest_only:
            mask = geometry.largest_component(mask)
        if post.fill_holes:
            mask = geometry.fill_holes(mask)
        return mask

    def segment(self, images: Sequence[np.ndarray]) -> list[Segmentation]:
        """Segment frames of any sizes (gray or RGB uint8) in one forward pass."""
        if not len(images):
            return []
        prepared = [prepare(image, self.meta, crop=self.crop, contrast=self.contrast) for image in images]
        probs = self._forward(np.stack([x for x, _ in prepared]))
        results = []
        for i, (_, geom) in enumerate(prepared):
            nodule = restore(probs["nodule"][i], geom)
            gland = restore(probs["gland"][i], geom) if "gland" in probs else None
            gland_mask = gland > self.meta.threshold if gland is not None else None
            mask = self._clean(nodule > self.threshold, gland_mask)
            crop = geom.crop
            share = float(gland_mask[crop.y0 : crop.y1, crop.x0 : crop.x1].mean()) if gland_mask is not None else None
            results.append(Segmentation(nodule, mask, gland, gland_mask, self._findings(probs, i), share,
                                        algorithm(self.meta)))
        return results

    def __call__(self, image: np.ndarray) -> Segmentation:
        return self.segment([image])[0]
