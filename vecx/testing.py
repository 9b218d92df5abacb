"""A pytest plugin for cross-backend tests: the ``backend`` fixture and its helpers.

Installed with vecx (entry point ``pytest11``), so any project's tests can ask for it::

    def test_mean(backend):
        x = backend.ones((3, 4))
        vecx.testing.assert_close(backend, x.mean(), 1.0)

``backend`` is parametrized over every known backend x device (ids ``numpy``,
``torch-cpu``, ``jax-cpu``, ``torch-cuda``, ``jax-cuda``, ``cupy-cuda``). Unavailable ones
are skipped with their reason, so the summary says what a run did not cover. Select with
``VECX_BACKENDS=numpy,torch:cpu`` or ``--vecx-backends``. Per-test markers:
``@pytest.mark.skip_backends("jax", reason=...)`` and
``@pytest.mark.xfail_backends("cupy", reason=...)``.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import numpy as np
import pytest

from vecx.registry import BackendStatus, status
from vecx.registry import backend as make_backend

ENV_VAR = "VECX_BACKENDS"

#: (rtol, atol) against a float64 NumPy reference, by the dtype under test
TOLERANCES: dict[str, tuple[float, float]] = {
    "float64": (1e-10, 1e-12),
    "float32": (2e-5, 1e-6),
    "float16": (2e-3, 1e-3),
    "bfloat16": (2e-2, 1e-2),
}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--vecx-backends",
        default=None,
        help=f"comma-separated backends or specs for the 'backend' fixture (or ${ENV_VAR})",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "skip_backends(*names, reason): skip these backends (names or specs)"
    )
    config.addinivalue_line(
        "markers", "xfail_backends(*names, reason): expect these backends to fail"
    )
    # Check the selection now: raised while collecting, a typo was a collection error with
    # a traceback (exit 2), or went unnoticed in a run with no test using the fixture.
    selected_specs(*_selection(config))


def _selection(config: pytest.Config) -> tuple[str | None, str]:
    option = config.getoption("--vecx-backends", None)
    if option:
        return option, "--vecx-backends"
    return os.environ.get(ENV_VAR), ENV_VAR


def all_specs() -> list[str]:
    """Every known backend x device kind, e.g. ``["numpy:cpu", "torch:cpu", ...]``."""
    from vecx.registry import all_specs as specs

    return specs()


def selected_specs(selection: str | None, source: str = ENV_VAR) -> list[str]:
    """Filter ``all_specs()`` by a comma-separated list of names (``torch``) or specs."""
    specs = all_specs()
    if not selection:
        return specs
    wanted = [w.strip().lower() for w in selection.split(",") if w.strip()]
    for w in wanted:  # a typo must not silently select nothing
        if not any(_matches(s, w) for s in specs):
            raise pytest.UsageError(f"{source}: unknown backend {w!r}; known: {', '.join(specs)}")
    return [s for s in specs if any(_matches(s, w) for w in wanted)]


def _matches(spec: str, wanted: str) -> bool:
    wanted = wanted.replace("gpu", "cuda")
    return spec == wanted or spec.split(":")[0] == wanted


def _id(spec: str) -> str:
    return "numpy" if spec == "numpy:cpu" else spec.replace(":", "-")


@cache
def _status(spec: str) -> BackendStatus:
    return status(spec)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" not in metafunc.fixturenames:
        return
    specs = selected_specs(*_selection(metafunc.config))
    metafunc.parametrize("backend", specs, ids=[_id(s) for s in specs], indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> Any:
    """A fresh backend (seed 0, float32) per test; skipped with the reason if unavailable."""
    spec = request.param
    name = spec.split(":")[0]
    for marker in request.node.iter_markers("skip_backends"):
        if any(_matches(spec, n) for n in marker.args):
            pytest.skip(marker.kwargs.get("reason", f"skipped for {name}"))
    for marker in request.node.iter_markers("xfail_backends"):
        if any(_matches(spec, n) for n in marker.args):
            request.applymarker(
                pytest.mark.xfail(reason=marker.kwargs.get("reason", ""), strict=True)
            )
    state = _status(spec)
    if not state.available:
        _not_covered[state.spec] = state.reason
        pytest.skip(f"{state.spec}: {state.reason}")
    return make_backend(spec)


_not_covered: dict[str, str] = {}


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say once per backend what this run did not cover, however many tests it skipped."""
    if _not_covered:
        terminalreporter.section("vecx backends not covered")
        for spec, reason in sorted(_not_covered.items()):
            terminalreporter.line(f"{spec}: {reason}")


def tolerance(dtype: str) -> tuple[float, float]:
    """(rtol, atol) for comparing a result of ``dtype`` with a float64 reference."""
    return TOLERANCES[dtype]


def assert_close(
    backend: Any, actual: Any, expected: Any, *, dtype: str | None = None, scale: float = 1.0
) -> None:
    """Compare a backend array with a NumPy (float64) reference at dtype-aware tolerance.

    ``scale`` widens the tolerance for computations whose error grows with size
    (a dot product of length k: about ``sqrt(k)``).
    """
    rtol, atol = tolerance(dtype or backend.dtype)
    got = backend.to_numpy(actual) if not isinstance(actual, (int, float)) else actual
    np.testing.assert_allclose(
        np.asarray(got, dtype=np.float64),
        np.asarray(expected, dtype=np.float64),
        rtol=rtol * scale,
        atol=atol * scale,
    )
