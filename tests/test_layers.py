"""The package's layers: every import points down a layer (or stays inside one), no circles.

Read from the source with ``ast``, so a new upward import or a new circle fails here
rather than as an ImportError on some later import order.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "zerohttp"

# Lower numbers are lower layers; a module may import its own layer or any below it.
# The message model at the bottom; the protocol drivers over it and the body senders; the
# handlers (static files, the ASGI host) above the drivers, which never import them.
LAYERS = {
    "errors": 0,
    "message": 1,
    "body": 2,
    "http": 3,
    "static": 4,
    "websocket": 4,
    "asgi": 5,
    "access": 5,
}
TOP = 6  # cli, runner, workers, server, config, loops, the package itself


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS.get(parts[1], TOP) if len(parts) > 1 else TOP


def imports_of(path: Path) -> set[str]:
    """zerohttp modules imported by ``path`` (relative imports resolved)."""
    name = module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("zerohttp"):
                found.add(target)
                for alias in node.names:  # ``from . import x`` may name a module
                    candidate = f"{target}.{alias.name}"
                    if (PACKAGE.parent / candidate.replace(".", "/")).with_suffix(".py").exists():
                        found.add(candidate)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("zerohttp"))
    found.discard(name)
    return found


GRAPH = {module_name(p): imports_of(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_the_graph_was_read() -> None:
    assert "zerohttp.http.connection" in GRAPH
    assert "zerohttp.message.response" in GRAPH["zerohttp.http.connection"]


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_point_down(module: str) -> None:
    upward = [t for t in GRAPH[module] if layer(t) > layer(module) and t != "zerohttp"]
    assert not upward, f"{module} imports a higher layer: {upward}"


def test_no_import_circles() -> None:
    done: set[str] = set()

    def visit(module: str, trail: list[str]) -> None:
        if module in trail:
            pytest.fail("import circle: " + " -> ".join([*trail[trail.index(module) :], module]))
        if module in done or module not in GRAPH:
            return
        for target in sorted(GRAPH[module]):
            if target == "zerohttp":
                continue  # the package's own __version__, defined before its imports
            visit(target, [*trail, module])
        done.add(module)

    for module in sorted(GRAPH):
        visit(module, [])
