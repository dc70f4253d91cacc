"""The architecture holds in the tree: the engine imports no Qt and nothing from the app or the CLI,
its wings import only the root and the wings below them (the order docs/architecture.md states),
the engine's root stays small, and no module imports itself round a circle."""
from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "thyroid_studio"
ENGINE = PACKAGE / "engine"
FORBIDDEN = ("PySide6", "PyQt5", "PyQt6", "pyqtgraph", "qimage2ndarray", "thyroid_studio.app", "thyroid_studio.cli")
MAX_ROOT_MODULES = 6  # besides __init__.py and the wings


def _module(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module a file imports, absolute, wherever the import stands (functions and TYPE_CHECKING too)."""
    package = _module(path).split(".") if path.name == "__init__.py" else _module(path).split(".")[:-1]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _graph() -> dict[str, set[str]]:
    modules = {_module(path): path for path in PACKAGE.rglob("*.py")}
    return {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}


def _layers() -> list[str]:
    """The layer order as docs/architecture.md writes it: 'Layers, lowest first: root, io, ...'."""
    text = (REPO / "docs" / "architecture.md").read_text()
    match = re.search(r"Layers, lowest first:\*{0,2}\s*(.+)", text)
    assert match, "docs/architecture.md states no 'Layers, lowest first:' line"
    return [name.strip(" `.") for name in re.split(r"[,→]|->", match.group(1)) if name.strip(" `.")]


def _layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[:2] != ["thyroid_studio", "engine"] or len(parts) < 3:
        return None
    return parts[2] if (ENGINE / parts[2]).is_dir() else "root"


def test_engine_has_no_qt_and_no_upward_imports() -> None:
    offenders = {
        f"{path.relative_to(ENGINE)}: {name}"
        for path in ENGINE.rglob("*.py")
        for name in _imports(path)
        if name.startswith(FORBIDDEN)
    }
    assert offenders == set()


def test_the_documented_layers_are_the_wings_in_the_tree() -> None:
    wings = {p.name for p in ENGINE.iterdir() if (p / "__init__.py").is_file()}
    layers = _layers()
    assert layers[0] == "root" and set(layers[1:]) == wings and len(layers) == len(set(layers))


def test_no_wing_imports_a_wing_above_it() -> None:
    rank = {name: i for i, name in enumerate(_layers())}
    offenders = set()
    for module, targets in _graph().items():
        here = _layer_of(module)
        for target in targets:
            there = _layer_of(target)
            if here is not None and there is not None and rank[there] > rank[here]:
                offenders.add(f"{module} ({here}) imports {target} ({there})")
    assert offenders == set()


def test_the_engine_root_is_small_and_imports_no_wing() -> None:
    root = [p for p in ENGINE.glob("*.py") if p.name != "__init__.py"]
    assert len(root) <= MAX_ROOT_MODULES, sorted(p.name for p in root)
    upward = {f"{p.name}: {m}" for p in root for m in _imports(p) if _layer_of(m) not in (None, "root")}
    assert upward == set()


def test_every_wing_says_what_it_is() -> None:
    missing = [p.parent.name for p in ENGINE.glob("*/__init__.py") if not ast.get_docstring(ast.parse(p.read_text()))]
    assert missing == []


def test_no_import_circles() -> None:
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert circles == []
