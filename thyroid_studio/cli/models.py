"""`thyroid-studio models`: the checkpoints available (shipped and user), and a model's card."""
from __future__ import annotations

import argparse

from . import EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, print_error


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--card", metavar="NAME", help="print the model card (Markdown) of a model name or file")


def _percent(value: float | None) -> str:
    return f"{100 * value:.2f}" if value is not None else "-"


def table(entries, defaults: set) -> str:
    """Aligned columns: name, arch, width, input, where, default marker, validation Dice %."""
    rows = [("name", "arch", "width", "input", "where", "default", "val Dice %")]
    for e in entries:
        size = "x".join(map(str, e.meta.input_size))
        where = "shipped" if e.shipped else "user"
        rows.append((e.path.stem, e.meta.arch, str(e.meta.width), size, where,
                     "*" if e.path.resolve() in defaults else "", _percent(e.meta.validation_dice)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def _defaults() -> set:
    from ..engine.models.checkpoint import CheckpointError
    from ..engine.models.library import default_model
    from ..engine.models.roles import MODEL_ROLES

    found = set()
    for role in MODEL_ROLES:
        try:
            found.add(default_model(role).resolve())
        except (CheckpointError, ValueError):
            continue
    return found


def run(args: argparse.Namespace) -> int:
    from ..engine.models.checkpoint import CheckpointError
    from ..engine.models.library import list_models, resolve_model, shipped_dir, user_dir

    if args.card:
        try:
            card = resolve_model(args.card).with_suffix(".md")
        except CheckpointError as exc:
            print_error("models", str(exc))
            return EXIT_USAGE
        if not card.is_file():
            print_error("models", f"{args.card} has no card ({card} is missing)")
            return EXIT_SOME_FAILED
        try:
            print(card.read_text(encoding="utf-8", errors="replace"))
        except OSError as exc:
            print_error("models", f"{card}: cannot be read ({exc.strerror or exc})")
            return EXIT_SOME_FAILED
        return EXIT_OK
    skipped: list[str] = []
    entries = list_models(on_problem=skipped.append)
    for line in skipped:
        print_error("models", f"skipped {line}")
    if not entries:
        print_error("models", f"no models in {shipped_dir()} or {user_dir()}")
        return EXIT_SOME_FAILED
    print(table(entries, _defaults()))
    print("* default (defaults.json)")
    return EXIT_SOME_FAILED if skipped else EXIT_OK
