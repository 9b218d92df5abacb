"""The layering rules, read from the source: which vecx module may import what.

Data flows one way: CLI -> commands -> bench engine, suites, trainer -> Backend methods ->
the framework. Read from every ``import`` statement (at module level or inside a
function) with ``ast``, so a rule is broken the moment the import is written, whether or
not a test happens to execute it. ``test_imports.py`` checks the other half at run time:
importing any module loads no framework.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "vecx"
FRAMEWORKS = {"torch", "jax", "jaxlib", "cupy", "cupyx", "cupy_backends"}

#: What each layer may import of vecx's own (prefixes), besides itself.
ALLOWED: dict[str, tuple[str, ...]] = {
    # the bottom: nothing of vecx's
    "vecx.protocol": (),
    "vecx.environment": (),
    "vecx.pytree": (),
    # backends: the protocol, machine facts and pytrees, never the layers above
    "vecx.backends": ("vecx.protocol", "vecx.environment", "vecx.pytree"),
    # the trainer: the protocol, data, timing, pytrees; executors named by import path
    # (and machine facts: the cores a data-parallel run divides among its workers)
    "vecx.training": ("vecx.protocol", "vecx.pytree", "vecx.data", "vecx.timing",
                      "vecx.environment"),  # fmt: skip
    # framework-native reference trainers: executors of the trainer
    "vecx.native": ("vecx.protocol", "vecx.pytree", "vecx.training"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, at module level?) for every import statement in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = top and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                   ast.Lambda))  # fmt: skip
            if isinstance(child, ast.Import):
                found.extend((alias.name, top) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and not child.level:
                found.append((child.module, top))
                found.extend((f"{child.module}.{alias.name}", top) for alias in child.names)
            visit(child, inner)

    visit(tree, True)
    return found


SOURCES = sorted(PACKAGE.rglob("*.py"))


def layer(name: str) -> str | None:
    return next((k for k in ALLOWED if name == k or name.startswith(k + ".")), None)


def test_the_rules_see_every_layer() -> None:
    names = {module_name(p) for p in SOURCES}
    for key in ALLOWED:
        assert any(n == key or n.startswith(key + ".") for n in names), key
    assert imports(PACKAGE / "native" / "torch.py")  # the reader finds imports at all


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: module_name(p))
def test_frameworks_are_imported_only_by_backends_and_native_and_lazily(path: Path) -> None:
    name = module_name(path)
    for module, top in imports(path):
        if module.split(".")[0] not in FRAMEWORKS:
            continue
        assert layer(name) in ("vecx.backends", "vecx.native"), (
            f"{name} imports {module}: only vecx/backends and vecx/native may import a framework"
        )
        assert not top, f"{name} imports {module} at module level: import it where it is used"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: module_name(p))
def test_each_layer_imports_only_what_is_below_it(path: Path) -> None:
    name = module_name(path)
    own = layer(name)
    if own is None:
        return  # the layers above (commands, engine, presentation) may use these
    allowed = (own, *ALLOWED[own])
    for module, _ in imports(path):
        if module != "vecx" and not module.startswith("vecx."):
            continue
        if module == "vecx":
            pytest.fail(f"{name} imports the vecx package (and with it everything)")
        assert any(module == a or module.startswith(a + ".") for a in allowed), (
            f"{name} imports {module}; {own} may import only {', '.join(allowed)}"
        )


def test_the_check_catches_a_backend_importing_the_trainer(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import numpy\n\ndef f():\n    from vecx.training import fit\n    import torch\n"
    )
    assert ("vecx.training", False) in imports(bad) and ("torch", False) in imports(bad)
    assert ("numpy", True) in imports(bad)


#: Modules that must know no suite: they ask the suite (vecx.suites.suite.Suite).
SUITE_BLIND = ("vecx.engine", "vecx.tables", "vecx.plots", "vecx.report", "vecx.results",
               "vecx.commands.bench", "vecx.commands.plot", "vecx.commands.report")  # fmt: skip


def _string_constants(path: Path) -> set[str]:
    """String literals of ``path`` that are not docstrings (f-string parts included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }  # fmt: skip
    return {
        node.value for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        and id(node) not in docstrings
    }  # fmt: skip


def _builtin_names() -> set[str]:
    from vecx.suites.suite import BUILTIN, OPT_IN, load

    names = set(BUILTIN) | set(OPT_IN)
    for suite in map(load, names.copy()):
        for device in ("numpy:cpu", "torch:cpu", "torch:cuda"):
            for quick in (False, True):
                names |= {case for case, _ in suite.plan(device, quick=quick)}
        names |= {spec.stem for spec in suite.figures}
    return names


@pytest.mark.parametrize(
    "path", [p for p in SOURCES if module_name(p).startswith(SUITE_BLIND)],
    ids=lambda p: module_name(p),
)  # fmt: skip
def test_engine_tables_plots_and_report_name_no_suite_or_case(path: Path) -> None:
    named = _string_constants(path) & _builtin_names()
    assert not named, (
        f"{module_name(path)} names {sorted(named)}: what a suite means belongs to the suite"
    )


@pytest.mark.parametrize(
    "path", [p for p in SOURCES if module_name(p).startswith("vecx.engine")],
    ids=lambda p: module_name(p),
)  # fmt: skip
def test_the_engine_prints_no_table_and_draws_no_figure(path: Path) -> None:
    for module, _ in imports(path):
        assert not module.startswith(("vecx.tables", "vecx.plots", "vecx.report", "vecx.console",
                                      "matplotlib")), f"{module_name(path)} imports {module}"


def test_the_suite_check_sees_suite_names(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text('"""matmul in a docstring is fine."""\nWHICH = ["matmul", f"{1}loop"]\n')
    assert {"matmul", "loop"} <= _string_constants(bad)  # f-string parts count too
    assert "matmul in a docstring is fine." not in _string_constants(bad)
    assert "matmul" in _builtin_names() and "block64" in _builtin_names()
