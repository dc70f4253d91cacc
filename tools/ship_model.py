"""Ship a finished training run: its final checkpoint into models/ (float16 storage) with its card,
named in models/defaults.json for a contour role, and its curves copied to docs/runs/<name>/.

    python tools/ship_model.py runs/final/trfe --role trfe --name trfe-a-lite0 --cv docs/cv/trfe.json \
        --cv-description "exam-grouped 5-fold cross-validation on the 509 DDTI frames, same recipe"

``--cv`` records the cross-validation figures of the same recipe (``tools/cross_validation.py score
--out``) in the checkpoint's metrics, so its card shows them.
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from thyroid_studio.engine.io.files import write_text_atomic
from thyroid_studio.engine.io.paths import project_relative, relative_command
from thyroid_studio.engine.models.card import write_model_card
from thyroid_studio.engine.models.checkpoint import load_checkpoint, save_checkpoint
from thyroid_studio.engine.models.library import shipped_dir
from thyroid_studio.engine.models.roles import MODEL_ROLES

REPO = Path(__file__).resolve().parents[1]
RUN_FILES = ("metrics.jsonl", "progress.png", "env.json", "data.json")  # copied as they are; config.json is rewritten


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a finished run folder (thyroid-studio train --out)")
    parser.add_argument("--role", choices=MODEL_ROLES, required=True, help="the contour colour it serves")
    parser.add_argument("--name", required=True, help="file stem in models/")
    parser.add_argument("--cv", type=Path, help="cross-validation results of the same recipe (JSON)")
    parser.add_argument("--cv-description", default="exam-grouped cross-validation on DDTI, same recipe")
    args = parser.parse_args()

    model, meta = load_checkpoint(args.run / "checkpoint_final.pt")
    if args.cv:
        cv = json.loads(args.cv.read_text())
        meta.metrics["cross_validation"] = {"description": args.cv_description,
                                            **{k: v for k, v in cv.items() if k != "frames"}}
    meta.name = args.name
    meta.training["command"] = relative_command(meta.training.get("command", ""))
    target = save_checkpoint(shipped_dir() / f"{args.name}.pt", model, meta, half=True)
    write_model_card(target, meta)

    defaults_path = shipped_dir() / "defaults.json"
    defaults = json.loads(defaults_path.read_text()) if defaults_path.is_file() else {}
    write_text_atomic(defaults_path, json.dumps({**defaults, args.role: target.name}, indent=2) + "\n")

    docs = REPO / "docs" / "runs" / args.name
    docs.mkdir(parents=True, exist_ok=True)
    for name in RUN_FILES:
        shutil.copy(args.run / name, docs / name)
    config = json.loads((args.run / "config.json").read_text())  # rewritten as it reads on any machine
    config.update(out=project_relative(config["out"]), command=relative_command(config.get("command", "")))
    write_text_atomic(docs / "config.json", json.dumps(config, indent=2) + "\n")
    shutil.copy(args.run / "validation" / "summary.json", docs / "validation_summary.json")
    print(f"{args.role}: {target} ({target.stat().st_size / 1e6:.1f} MB), card {target.with_suffix('.md').name}")


if __name__ == "__main__":
    main()
