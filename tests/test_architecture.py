"""The package's import graph, read statically (ast): one straight line, no circles.

Every ``import`` / ``from … import`` inside ``mobility`` (module level and inside functions alike)
is an edge; a cycle in that graph is an import circle, whether or not Python happens to resolve it
at run time. No module may import the package ``__init__`` (``from mobility import …`` /
``from . import __version__``): the public API imports the engine, never the other way round.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

PKG = Path(__file__).resolve().parents[1] / "mobility"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _resolve(module: str, is_pkg: bool, node: ast.ImportFrom) -> str:
    """The absolute module name a ``from X import …`` refers to."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_pkg else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph() -> nx.DiGraph:
    """Edges importer -> imported between the package's own modules."""
    mods = _modules()
    graph = nx.DiGraph()
    graph.add_nodes_from(mods)
    for name, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, is_pkg, node)
                # `from pkg import sub` names a submodule when pkg.sub is one
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            for target in targets:
                while target and target not in mods:  # `import mobility.x.y` -> the nearest module
                    target = target.rpartition(".")[0]
                if target and target.startswith("mobility") and target != name:
                    graph.add_edge(name, target)
    return graph


def _package_init_edges(graph: nx.DiGraph) -> list[tuple[str, str]]:
    return [(a, b) for a, b in graph.edges if b == "mobility"]


def test_graph_reads_the_package():
    graph = import_graph()
    # a sanity floor: the reader must see the engine's real edges, or an empty graph would pass
    assert graph.has_edge("mobility.sim", "mobility.signals")
    assert graph.has_edge("mobility", "mobility.scenario")
    assert graph.number_of_edges() > 50


def test_no_import_circles():
    cycles = sorted(sorted(c) for c in nx.simple_cycles(import_graph()))
    assert cycles == [], "import circles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_no_module_imports_the_package_init():
    assert _package_init_edges(import_graph()) == []


def test_the_checker_sees_a_circle(tmp_path):
    """The same reader on a tiny fake package finds its circle and its import of __init__."""
    global PKG
    pkg = tmp_path / "mobility"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from .a import x\n")
    (pkg / "a.py").write_text("from . import __version__\ndef f():\n    from .b import y\n")
    (pkg / "b.py").write_text("from mobility.a import f\n")
    saved, PKG = PKG, pkg
    try:
        graph = import_graph()
    finally:
        PKG = saved
    assert sorted(sorted(c) for c in nx.simple_cycles(graph)) == [["mobility", "mobility.a"],
                                                                ["mobility.a", "mobility.b"]]
    assert _package_init_edges(graph) == [("mobility.a", "mobility")]
