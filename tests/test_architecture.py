"""The engine imports no Qt and nothing from the app or the CLI."""
from __future__ import annotations

import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[1] / "thyroid_studio" / "engine"
FORBIDDEN = ("PySide6", "PyQt5", "PyQt6", "pyqtgraph", "qimage2ndarray", "thyroid_studio.app", "thyroid_studio.cli")


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            names.add(module if node.level == 0 else "." * node.level + module)
    return names


def test_engine_has_no_qt_and_no_upward_imports() -> None:
    offenders = {
        f"{path.relative_to(ENGINE)}: {name}"
        for path in ENGINE.rglob("*.py")
        for name in _imports(path)
        if name.startswith(FORBIDDEN) or name.lstrip(".").startswith(("app", "cli"))
    }
    assert offenders == set()
