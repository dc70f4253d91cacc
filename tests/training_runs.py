"""A tiny training run's configuration for the tests (width 4, 64 px, 2 epochs on CPU) over the synthetic
nodule and gland sets of conftest.py's ``synthetic`` fixture."""
from __future__ import annotations

from pathlib import Path

from thyroid_studio.engine.training.trainer import TrainConfig


def train_config(synthetic, out: Path, **kwargs) -> TrainConfig:
    values = dict(arch="trfe-a", nodules=str(synthetic["nodules"]), glands=str(synthetic["glands"]), out=str(out),
                  epochs=2, width=4, size=64, batch_pairs=4, optimizer="adamw", schedule="cosine", device="cpu",
                  gland_val_frames=0)
    values.update(kwargs)
    return TrainConfig(**values)
