"""The package's shape: imports flow one way through declared layers, with no cycle, and modules stay small.

The import graph is built from the source (every ``import`` and ``from ... import`` of jaxcoh, at module level or
inside functions; ``if TYPE_CHECKING:`` blocks left out), so the test needs nothing to be importable.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "jaxcoh"
MAX_LINES = 450

# Layers, lowest first: a module may import only from its own layer or the ones before it. A module missing here
# fails the test, so a new module has to be placed.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("version", "config", "constants", "numerics", "registry", "parameters", "results", "resumable",
              "tracecache", "compilation_cache", "seed", "progress", "sobol")),
    ("data", ("catalog", "sparc", "sparc_layout", "galaxy_tables", "selection", "sharding", "curves.fold_plan")),
    ("kernels", ("coherence", "properties", "metrics", "halo_profiles", "fmissing.derivation")),
    ("models", ("fmissing.models", "curves.inputs", "curves.nuisance", "curves.models", "curves.baselines",
                "curves.unified", "curves.halos", "mock")),
    ("objective", ("fmissing.objective", "fmissing.union", "curves.likelihood", "curves.objective", "curves.folding")),
    ("solvers", ("solvers.*", "uncertainty", "fitresult")),
    ("fit", ("fmissing.fitting", "fmissing.crossval", "fmissing.reproduce", "curves.fitting", "curves.galaxy_starts",
             "curves.errors", "curves.result", "curves.tables", "curves.convergence", "curves.laplace")),
    ("sweeps and sampling", ("fmissing.sweeps", "curves.comparison", "curves.halo_catalog", "curves.posterior",
                             "curves.calibration", "curves.sampling", "sampling.*")),
    ("command line, plots, tables, benchmarks", ("cli.*", "plots.*", "tables.*", "bench.*")),
]


def _modules() -> dict[str, Path]:
    mods = {}
    for p in PACKAGE.rglob("*.py"):
        parts = list(p.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = p  # "" is the package itself
    return mods


def _layer_of(module: str, children: dict[str, list[str]]) -> int:
    """The layer of ``module`` (relative to the package); a subpackage's ``__init__`` sits at its highest child's,
    the package's own ``__init__`` above every layer."""
    if module == "":
        return len(LAYERS)
    if module in children:
        return max(_layer_of(c, children) for c in children[module])
    for i, (_, names) in enumerate(LAYERS):
        for n in names:
            if module == n or (n.endswith(".*") and (module + ".").startswith(n[:-1])):
                return i
    raise KeyError(module)


def _imports(module: str, path: Path, mods: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text())
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for n in ast.walk(node)}
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[: len(base) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            elif (node.module or "").split(".")[0] == "jaxcoh":
                name = node.module.partition(".")[2]
            else:
                continue
            subs = [f"{name}.{a.name}" if name else a.name for a in node.names]
            # ``from jaxcoh import submodule`` imports the submodule; anything else from a package is its __init__
            targets = subs + ([name] if name or not all(t in mods for t in subs) else [])
        elif isinstance(node, ast.Import):
            targets = [a.name.partition(".")[2] for a in node.names if a.name.split(".")[0] == "jaxcoh"]
        else:
            continue
        out |= {t for t in targets if (t in mods or t == "") and t != module}
    if path.name == "__init__.py":  # a package re-exporting its own children is not an upward import
        out = {t for t in out if not (t + ".").startswith(module + ".") or not module}
    return out


def _graph():
    mods = _modules()
    children: dict[str, list[str]] = {}
    for m in mods:
        if mods[m].name == "__init__.py":
            children[m] = [c for c in mods if c != m and (c + ".").startswith(m + ".") if m] if m else []
    edges = {m: _imports(m, p, mods) for m, p in mods.items() if m}
    return mods, {k: v for k, v in children.items() if k}, edges


def test_every_module_has_a_layer():
    mods, children, _ = _graph()
    missing = []
    for m in mods:
        if not m:
            continue
        try:
            _layer_of(m, children)
        except KeyError:
            missing.append(m)
    assert not missing, f"modules without a layer in tests/test_architecture.py: {missing}"


def test_imports_flow_one_way():
    _, children, edges = _graph()
    upward = []
    for m, targets in edges.items():
        for t in targets:
            if _layer_of(t, children) > _layer_of(m, children):
                name = lambda x: LAYERS[_layer_of(x, children)][0] if x else "the package"  # noqa: E731
                upward.append(f"{m} ({name(m)}) imports {t or 'jaxcoh'} ({name(t)})")
    assert not upward, "\n".join(sorted(upward))


def test_no_import_cycles():
    _, _, edges = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in edges:
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_modules_stay_small():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_the_checker_sees_a_planted_cycle(tmp_path, monkeypatch):
    """The graph is real: a planted upward import and a planted cycle are both found."""
    pkg = tmp_path / "jaxcoh"
    (pkg / "curves").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "catalog.py").write_text("from .curves.models import CurveModel\n")
    (pkg / "curves" / "__init__.py").write_text("")
    (pkg / "curves" / "models.py").write_text("from ..catalog import Catalog\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", pkg)
    with pytest.raises(AssertionError, match="catalog .data. imports curves.models"):
        test_imports_flow_one_way()
    with pytest.raises(AssertionError, match="import cycles"):
        test_no_import_cycles()
