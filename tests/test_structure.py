"""The import graph runs one way: data -> model -> train / evaluate / export -> runtime / judge
-> server / web, the CLI on top. Read from the source with `ast`, so an import inside a
function counts as much as one at the top of a module."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "utjima"


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module `path` imports; `from a import b` gives "a" and "a.b" (b may be a module)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import; the package uses absolute ones"
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return out


GRAPH = {_module(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def _closure(roots: list[str]) -> set[str]:
    """Everything the modules `roots` import, following utjima's own modules."""
    seen, todo, found = set(), list(roots), set()
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        for imp in GRAPH.get(m, ()):
            found.add(imp)
            if imp in GRAPH:
                todo.append(imp)
    return found


def _hits(imports: set[str], target: str) -> bool:
    return any(i == target or i.startswith(target + ".") for i in imports)


def test_the_graph_sees_the_package():
    assert {"utjima.cli", "utjima.train", "utjima.server.app", "utjima.data.framing"} <= set(GRAPH)
    assert "utjima.cli" in GRAPH["utjima.__main__"]
    assert _hits(GRAPH["utjima.server.main"], "uvicorn")


def test_only_main_imports_the_cli():
    importers = [m for m, imps in GRAPH.items() if _hits(imps, "utjima.cli")]
    assert importers == ["utjima.__main__"]


def test_evaluate_and_export_take_nothing_from_train():
    for m in ("utjima.evaluate", "utjima.export"):
        assert not _hits(GRAPH[m], "utjima.train"), m


def test_stages_below_the_cli_never_parse_flags():
    users = [m for m, imps in GRAPH.items() if "argparse" in imps and m != "utjima.cli"]
    assert users == []


def test_the_server_never_imports_torch():
    server = [m for m in GRAPH if m == "utjima.server" or m.startswith("utjima.server.")]
    reached = _closure(server)
    assert not _hits(reached, "torch"), sorted(i for i in reached if i.startswith("utjima."))
    assert not _hits(reached, "utjima.model") and not _hits(reached, "utjima.train")
