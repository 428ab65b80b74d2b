"""Module boundaries: no import circle in src/floecast, the floecast command imports a step's
modules only when the step runs, and the steps that do not run the model import no torch."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "floecast"


def _module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Each module of the package and the package modules it imports anywhere: at the top, in a
    function (a lazy import is a dependency too) or for type checking."""
    modules = {_module_name(p, package): p for p in package.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the module's own package
                    package_parts = name.split(".")[: len(name.split(".")) - node.level + (path.stem == "__init__")]
                    base = ".".join(package_parts + ([node.module] if node.module else []))
                # `from floecast import layout` imports the module floecast.layout
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
            else:
                continue
            for target in targets:
                while target and target not in modules:  # floecast.sources.http.X -> floecast.sources.http
                    target = target.rpartition(".")[0]
                if target and target != name:
                    edges.add(target)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_find_cycle_finds_a_circle_and_no_false_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_import_graph_sees_lazy_imports(tmp_path: Path) -> None:
    package = tmp_path / "floecast"
    (package / "sources").mkdir(parents=True)
    (package / "__init__.py").write_text("__version__ = '0'\n")
    (package / "sources" / "__init__.py").write_text("")
    (package / "sources" / "http.py").write_text("from floecast import __version__\n")
    (package / "a.py").write_text("def f():\n    from floecast.b import g\n")
    (package / "b.py").write_text("from floecast import a\nfrom floecast.sources.http import x\n")
    graph = import_graph(package)
    assert graph["floecast.a"] == {"floecast.b"}
    assert graph["floecast.b"] == {"floecast.a", "floecast.sources.http"}
    assert graph["floecast.sources.http"] == {"floecast"}
    assert find_cycle(graph) == ["floecast.a", "floecast.b", "floecast.a"]


def test_no_import_circle_in_the_package() -> None:
    graph = import_graph()
    assert {"floecast.cli", "floecast.calibrate", "floecast.combine", "floecast.store"} <= set(graph)
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def _imported_after(code: str) -> set[str]:
    """The top-level modules a fresh interpreter holds after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    return set(json.loads(proc.stdout.splitlines()[-1]))


def test_the_command_imports_no_step_module() -> None:
    """`floecast <step>` loads the step's modules when the step runs: the parser alone needs none
    of them, so every rule's env can run the command."""
    loaded = _imported_after("from floecast.cli import build_parser; build_parser()")
    assert {m for m in loaded if m.startswith("floecast")} == {"floecast", "floecast.cli", "floecast.layout"}
    heavy = {"numpy", "pandas", "xarray", "torch", "requests", "matplotlib", "zarr", "yaml", "fsspec"}
    assert not heavy & loaded


def test_steps_that_do_not_run_the_model_import_no_torch() -> None:
    """Combine, calibration, scorecard (with SEAS5), plots, exports (the community's too), animations,
    egress and the data check read the store and the member files without torch; the ones that
    download nothing import no requests."""
    modules = ["combine", "calibrate", "verify", "plots", "members", "store", "export", "egress", "preprocess"]
    modules += ["verify_tables", "seas5_benchmark", "community", "animate", "checkdata"]
    loaded = _imported_after("\n".join(f"import floecast.{m}" for m in modules))
    assert {f"floecast.{m}" for m in modules} <= loaded
    assert "torch" not in loaded and "floecast.dataset" not in loaded
    assert "requests" not in loaded
