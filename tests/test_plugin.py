"""The pytest plugin ``vecx.testing``: the ``backend`` fixture, its selection and markers.

Each test runs an inner pytest session (``pytester``) with the plugin loaded by name, as
it is with ``PYTHONPATH=.``; installed, the ``pytest11`` entry point loads the same module.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import vecx
from vecx.testing import TOLERANCES, assert_close, tolerance

pytest_plugins = ["pytester"]

ALL_IDS = ["numpy", "torch-cpu", "torch-cuda", "jax-cpu", "jax-cuda", "cupy-cuda"]
CPU = ["numpy:cpu", "torch:cpu", "jax:cpu"]

INNER = """
import pytest

def test_fresh(backend):
    assert backend.dtype == "float32"
    assert backend.to_numpy(backend.ones(2)).tolist() == [1.0, 1.0]
"""


@pytest.fixture(scope="module", autouse=True)
def frameworks_imported() -> None:
    """Import every framework before ``pytester`` snapshots ``sys.modules``.

    An in-process inner run restores ``sys.modules`` afterwards: a framework imported
    first in there would be dropped and imported a second time, and PyTorch then crashes
    the process (a segmentation fault).
    """
    for st in vecx.list_backends():
        if st.available:
            be = vecx.backend(st.spec)
            be.to_numpy(be.ones(2))
            if st.name != "numpy":
                be.to_numpy(be.ones(2, dtype="bfloat16"))


@pytest.fixture(autouse=True)
def no_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    """The outer run's own selection must not leak into the inner runs."""
    monkeypatch.delenv("VECX_BACKENDS", raising=False)


def status() -> dict[str, vecx.BackendStatus]:
    return {s.id: s for s in vecx.list_backends()}


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    # Plugins the inner run does not need cost ~1 s per run in this process, mostly
    # garbage collections (unraisableexception) over the frameworks' many objects.
    quiet = ("cacheprovider", "hypothesispytest", "benchmark", "unraisableexception")
    plugins = [arg for name in quiet for arg in ("-p", f"no:{name}")]
    return pytester.runpytest("-p", "vecx.testing", *plugins, *args)


def collected_ids(result: pytest.RunResult) -> list[str]:
    return [line.split("[", 1)[1].rstrip("]") for line in result.outlines if "::" in line]


def test_fixture_ids_cover_every_backend_and_device(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_inner=INNER)
    result = run(pytester, "--collect-only", "-q")
    ids = collected_ids(result)
    assert ids[: len(ALL_IDS)] == ALL_IDS
    assert set(ids) == set(status())  # and any installed plugin backend


def test_unavailable_backends_are_skipped_with_their_reason(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_inner=INNER)
    result = run(pytester, "-rs")
    states = status()
    up = [s for s in states.values() if s.available]
    down = [s for s in states.values() if not s.available]
    result.assert_outcomes(passed=len(up), skipped=len(down))
    skip_lines = [line for line in result.outlines if line.startswith("SKIPPED")]
    for s in down:
        assert any(line.endswith(f": {s.spec}: {s.reason}") for line in skip_lines), s
    assert "numpy" in [s.id for s in up]


@pytest.mark.parametrize(
    ("how", "selection", "ids"),
    [
        ("env", "numpy,torch", ["numpy", "torch-cpu", "torch-cuda"]),
        ("option", "jax", ["jax-cpu", "jax-cuda"]),
        ("option", " Torch:CPU , numpy ", ["numpy", "torch-cpu"]),
        ("env", "torch:gpu,cupy", ["torch-cuda", "cupy-cuda"]),
    ],
)
def test_selection_by_env_or_option(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, how: str, selection: str,
    ids: list[str],
) -> None:
    pytester.makepyfile(test_inner=INNER)
    if how == "env":
        monkeypatch.setenv("VECX_BACKENDS", selection)
        result = run(pytester, "--collect-only", "-q")
    else:
        result = run(pytester, "--collect-only", "-q", f"--vecx-backends={selection}")
    assert collected_ids(result) == ids


def test_option_wins_over_env(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_inner=INNER)
    monkeypatch.setenv("VECX_BACKENDS", "torch")
    result = run(pytester, "--collect-only", "-q", "--vecx-backends=numpy")
    assert collected_ids(result) == ["numpy"]


@pytest.mark.parametrize("how", ["env", "option"])
def test_unknown_backend_is_a_usage_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    pytester.makepyfile(test_other="def test_plain():\n    pass\n")  # no backend test at all
    if how == "env":
        monkeypatch.setenv("VECX_BACKENDS", "numpy,tensorflow")
        result = run(pytester)
        source = "VECX_BACKENDS"
    else:
        result = run(pytester, "--vecx-backends=tensorflow")
        source = "--vecx-backends"
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {source}: unknown backend 'tensorflow'; known: numpy*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_skip_and_xfail_markers(pytester: pytest.Pytester) -> None:
    cpu = [s for s in CPU if any(st.spec == s and st.available for st in vecx.list_backends())]
    if cpu != CPU:
        pytest.skip(f"needs {', '.join(CPU)}; available: {', '.join(cpu)}")
    pytester.makepyfile(
        test_markers="""
        import pytest

        @pytest.mark.skip_backends("jax", reason="not for jax")
        def test_skipped_on_jax(backend):
            assert backend.name != "jax"

        @pytest.mark.skip_backends("torch:cpu", "numpy:cpu")
        def test_skipped_by_spec(backend):
            assert backend.name == "jax"

        @pytest.mark.xfail_backends("numpy", reason="numpy has no bfloat16")
        def test_bfloat16(backend):
            assert backend.ones(2, dtype="bfloat16").shape[0] == 2

        @pytest.mark.xfail_backends("torch", reason="strict: torch passes, so this fails")
        def test_strict_xfail(backend):
            assert True
        """
    )
    result = run(pytester, "-rsxX", "--vecx-backends=numpy:cpu,torch:cpu,jax:cpu", "-v")
    outcomes = {
        line.split("::")[1].split(" ")[0]: line.split(" ")[1]
        for line in result.outlines
        if line.startswith("test_markers.py::")
    }
    assert outcomes == {
        "test_skipped_on_jax[numpy]": "PASSED",
        "test_skipped_on_jax[torch-cpu]": "PASSED",
        "test_skipped_on_jax[jax-cpu]": "SKIPPED",
        "test_skipped_by_spec[numpy]": "SKIPPED",
        "test_skipped_by_spec[torch-cpu]": "SKIPPED",
        "test_skipped_by_spec[jax-cpu]": "PASSED",
        "test_bfloat16[numpy]": "XFAIL",
        "test_bfloat16[torch-cpu]": "PASSED",
        "test_bfloat16[jax-cpu]": "PASSED",
        "test_strict_xfail[numpy]": "PASSED",
        "test_strict_xfail[torch-cpu]": "FAILED",  # XPASS(strict)
        "test_strict_xfail[jax-cpu]": "PASSED",
    }
    result.stdout.fnmatch_lines(["SKIPPED * not for jax", "XFAIL *numpy has no bfloat16*"])


def test_tests_without_the_fixture_are_not_parametrized(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_plain():\n    pass\n")
    result = run(pytester, "-q")
    result.assert_outcomes(passed=1)


# --------------------------------------------------------------------------- helpers


def test_tolerances_widen_as_precision_drops() -> None:
    order = ["float64", "float32", "float16", "bfloat16"]
    rtols = [tolerance(d)[0] for d in order]
    assert rtols == sorted(rtols) and set(TOLERANCES) == set(order)


@pytest.mark.parametrize(
    ("dtype", "error", "ok"),
    [("float64", 1e-13, True), ("float64", 1e-8, False),
     ("float32", 1e-6, True), ("float32", 1e-3, False),
     ("float16", 1e-3, True), ("float16", 1e-1, False)],
)
def test_assert_close_is_dtype_aware(dtype: str, error: float, ok: bool) -> None:
    be = vecx.backend("numpy", dtype="float64")
    expected = np.array([1.0, -2.0, 3.0])
    actual: Any = be.asarray(expected * (1 + error))
    if ok:
        assert_close(be, actual, expected, dtype=dtype)
    else:
        with pytest.raises(AssertionError):
            assert_close(be, actual, expected, dtype=dtype)


def test_assert_close_scale_and_default_dtype() -> None:
    be = vecx.backend("numpy")  # float32 by default
    expected = np.array([1.0, 2.0])
    actual = be.asarray(expected * (1 + 1e-4))
    with pytest.raises(AssertionError):
        assert_close(be, actual, expected)
    assert_close(be, actual, expected, scale=10.0)
    assert_close(be, 2.0, 2.0)  # plain Python numbers pass through
