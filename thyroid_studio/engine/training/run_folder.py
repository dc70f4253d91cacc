"""A training run's folder describes itself (nnU-Net's convention).

``config.json`` (the TrainConfig), ``env.json`` (host, versions, device), ``data.json``
(counts and split keys), ``metrics.jsonl`` (one row per epoch), ``progress.png`` (redrawn
each epoch), ``train.log``, ``checkpoint_best.pt``/``checkpoint_final.pt`` with cards,
``state_last.pt`` (everything ``--resume`` needs) and ``validation/summary.json``.
"""
from __future__ import annotations

import json
import logging
import math
import os
import platform
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..io.files import atomic_path, write_text_atomic
from ..io.paths import relative_command


def environment(device: torch.device, world: int) -> dict[str, Any]:
    """Where the run happened: host, versions, device, CPU count, processes."""
    return {
        "host": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "world_size": world,
    }


def write_json(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, default=str) + "\n")


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The per-epoch rows of a run's metrics.jsonl."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_progress(rows: Sequence[dict[str, Any]], path: Path) -> None:
    """Redraw progress.png: losses and validation scores per epoch (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(11, 4))
    for key in sorted({k for r in rows for k in r if k == "loss" or k.endswith("_loss")}):
        ax_loss.plot(epochs, [r.get(key, math.nan) for r in rows], label=key)
    ax_loss.set_xlabel("epoch")
    ax_loss.set_title("training loss")
    ax_loss.legend(fontsize=7)
    for key in ("val_nodule_dice", "val_nodule_iou", "val_gland_dice", "val_gland_coverage", "val_suspicious_auc"):
        if any(key in r for r in rows):
            ax_val.plot(epochs, [r.get(key, math.nan) for r in rows], label=key)
    ax_val.set_xlabel("epoch")
    ax_val.set_title("validation (original resolution, per-image mean)")
    ax_val.set_ylim(0, 1)
    if ax_val.lines:
        ax_val.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)


def save_state(path: Path, state: dict[str, Any]) -> None:
    """state_last.pt: plain tensors and containers only, so it loads with ``weights_only=True``."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_state(path: Path) -> dict[str, Any]:
    """state_last.pt; a ValueError naming the file when it cannot be read (truncated, damaged, not a state)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise ValueError(f"{path}: not a readable run state (truncated or damaged; {type(exc).__name__})") from exc
    if not isinstance(state, dict):
        raise ValueError(f"{path}: not a run state (a {type(state).__name__}, not a mapping)")
    return state


def attach_log(logger: logging.Logger, run_dir: Path | None) -> logging.Handler | None:
    """Send ``logger``'s records to ``run_dir/train.log`` too; returns the handler to remove later."""
    logger.setLevel(logging.INFO)
    if run_dir is None:
        return None
    handler = logging.FileHandler(run_dir / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    return handler


def command_line() -> str:
    """The exact command that is running, for the record, with paths relative to the project."""
    prog = Path(sys.argv[0]).name
    return relative_command(" ".join(shlex.quote(a) for a in [prog, *sys.argv[1:]]))
