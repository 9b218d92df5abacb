"""The layering rule: importing vecx, or any of its modules, loads no framework.

Only ``vecx/backends/`` may import torch, jax or cupy, and only inside functions or
constructors (docs/architecture.md). Each check runs in a fresh interpreter, since this
test process has long imported every framework.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "vecx"
FRAMEWORKS = ("torch", "jax", "jaxlib", "cupy", "cupy_backends")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(*, backends: bool) -> list[str]:
    """Every vecx module outside (or inside) ``vecx/backends``; ``__main__`` runs the CLI."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        inside = (PACKAGE / "backends") in path.parents
        if inside == backends and path.name != "__main__.py":
            found.append(module_name(path))
    return found


CHECK = """
import importlib, json, sys
FRAMEWORKS = {frameworks!r}
report = []
for name in {modules!r}:
    before = set(sys.modules)
    error = None
    try:
        importlib.import_module(name)
    except Exception as exc:
        error = f"{{type(exc).__name__}}: {{exc}}"
    loaded = sorted(m for m in set(sys.modules) - before if m.split(".")[0] in FRAMEWORKS)
    report.append([name, error, loaded])
print(json.dumps(report))
"""


def import_in_fresh_interpreter(names: list[str]) -> list[tuple[str, str | None, list[str]]]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    code = CHECK.format(frameworks=FRAMEWORKS, modules=names)
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    return [tuple(row) for row in json.loads(proc.stdout.splitlines()[-1])]


def test_module_discovery_finds_the_package() -> None:
    outside = modules(backends=False)
    assert {"vecx", "vecx.cli", "vecx.testing", "vecx.registry", "vecx.protocol"} <= set(outside)
    assert not any(name.startswith("vecx.backends") for name in outside)
    assert {"vecx.backends.torch", "vecx.backends.jax"} <= set(modules(backends=True))


def test_importing_vecx_loads_no_framework() -> None:
    names = ["vecx", "vecx.cli", "vecx.testing"] + modules(backends=False)
    report = import_in_fresh_interpreter(names)
    errors = [f"{name}: {error}" for name, error, _ in report if error]
    assert not errors, "modules that fail to import: " + "; ".join(errors)
    culprits = {name: loaded for name, _, loaded in report if loaded}
    assert not culprits, f"these modules load a framework on import: {culprits}"


def test_backend_modules_import_their_framework_only_when_used() -> None:
    report = import_in_fresh_interpreter(modules(backends=True))
    errors = [f"{name}: {error}" for name, error, _ in report if error]
    assert not errors, "modules that fail to import: " + "; ".join(errors)
    culprits = {name: loaded for name, _, loaded in report if loaded}
    assert not culprits, f"these modules load a framework on import: {culprits}"


def test_the_check_would_see_a_framework() -> None:
    """The probe itself works: a module that imports a framework is reported."""
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed")
    ((name, error, loaded),) = import_in_fresh_interpreter(["jax.numpy"])
    assert error is None and "jax" in loaded and "jaxlib" in loaded
