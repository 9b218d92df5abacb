"""Cross-backend tests of the Backend protocol: every op, on every available backend, against
a NumPy float64 reference at dtype-aware tolerances (``vecx.testing``).

The ``backend`` fixture comes from vecx's pytest plugin; backends that cannot run here are
skipped with their reason. JAX is imported only inside tests that already run on JAX, so
this module runs where JAX is not installed.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vecx
from vecx.testing import assert_close

HALF = ("float16", "bfloat16")
REPO = Path(__file__).resolve().parents[1]


def dtype_name(x: Any) -> str:
    """``float32`` for a NumPy, CuPy, JAX or PyTorch (``torch.float32``) array."""
    return str(x.dtype).removeprefix("torch.")


def supports(backend: Any, dtype: str) -> bool:
    return not (dtype == "bfloat16" and backend.name in ("numpy", "cupy"))


@contextlib.contextmanager
def float64_mode(backend: Any) -> Iterator[None]:
    """Where float64 works: everywhere but JAX, which needs its 64-bit mode on."""
    if backend.name == "jax":
        import jax

        with jax.enable_x64(True):
            yield
    else:
        yield


def available(spec: str) -> bool:
    return any(s.spec == spec and s.available for s in vecx.list_backends())


def host(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


# --------------------------------------------------------------------------- identity


def test_backend_satisfies_the_protocol(backend: Any) -> None:
    assert isinstance(backend, vecx.Backend)
    assert backend.name in ("numpy", "torch", "jax", "cupy")
    assert backend.dtype == "float32"
    assert backend.spec == f"{backend.name}:{backend.device}"
    assert backend.device == "cpu" or backend.device.startswith("cuda:")


# --------------------------------------------------------------------------- creation


def test_ones_zeros_default_to_float32(backend: Any) -> None:
    ones, zeros = backend.ones((2, 3)), backend.zeros(4)
    assert tuple(ones.shape) == (2, 3) and tuple(zeros.shape) == (4,)
    assert dtype_name(ones) == dtype_name(zeros) == "float32"
    assert_close(backend, ones, np.ones((2, 3)))
    assert_close(backend, zeros, np.zeros(4))


@pytest.mark.parametrize("dtype", HALF)
def test_half_dtypes_where_supported(backend: Any, dtype: str) -> None:
    if not supports(backend, dtype):
        with pytest.raises(vecx.UnsupportedDtype, match=dtype):
            backend.ones((2,), dtype=dtype)
        with pytest.raises(vecx.UnsupportedDtype):
            vecx.backend(backend.spec, dtype=dtype)
        return
    for x in (
        backend.ones((2, 3), dtype=dtype),
        backend.zeros((2, 3), dtype=dtype),
        backend.asarray([[0.5, 1.5, -2.0]] * 2, dtype=dtype),
        backend.normal(0.0, 1.0, (2, 3), dtype=dtype),
    ):
        assert dtype_name(x) == dtype and tuple(x.shape) == (2, 3)
    host_copy = backend.to_numpy(backend.asarray([0.5, 1.5, -2.0], dtype=dtype))
    assert isinstance(host_copy, np.ndarray)  # NumPy has no bfloat16: widened, exactly
    np.testing.assert_array_equal(host_copy, [0.5, 1.5, -2.0])
    half = vecx.backend(backend.spec, dtype=dtype)
    assert half.dtype == dtype and dtype_name(half.ones(3)) == dtype


def test_float64_is_never_downcast(backend: Any) -> None:
    third = np.array([1 / 3, 2 / 3], dtype=np.float64)
    with float64_mode(backend):
        for x in (backend.ones(2, dtype="float64"), backend.asarray(third, dtype="float64")):
            assert dtype_name(x) == "float64"
        back = backend.to_numpy(backend.asarray(third, dtype="float64"))
        np.testing.assert_array_equal(back, third)  # bit for bit
        be64 = vecx.backend(backend.spec, dtype="float64")
        assert dtype_name(be64.normal(0.0, 1.0, 3)) == "float64"
        assert dtype_name(be64.asarray(third)) == "float64"


def test_jax_float64_without_x64_names_the_fix() -> None:
    if not available("jax:cpu"):
        pytest.skip("jax:cpu is not available")
    import jax

    if jax.config.jax_enable_x64:
        pytest.skip("JAX 64-bit mode is on in this process")
    be = vecx.backend("jax")
    for make in (
        lambda: vecx.backend("jax", dtype="float64"),
        lambda: be.ones(2, dtype="float64"),
        lambda: be.asarray([1.0], dtype="float64"),
        lambda: be.normal(0.0, 1.0, 2, dtype="float64"),
    ):
        with pytest.raises(vecx.UnsupportedDtype, match="JAX_ENABLE_X64=1") as err:
            make()
        assert "jax_enable_x64" in str(err.value)


@pytest.mark.parametrize("dtype", ["float8", "double", ""])
def test_unknown_dtype_lists_the_choices(backend: Any, dtype: str) -> None:
    with pytest.raises(ValueError, match="float32, float64, float16, bfloat16"):
        backend.zeros(2, dtype=dtype)
    with pytest.raises(ValueError, match="unknown dtype"):
        vecx.backend(backend.spec, dtype=dtype)


def test_integer_and_boolean_arrays_by_name(backend: Any) -> None:
    """Creation takes int32, int64 and bool too; a backend's own dtype and random draws
    stay floats; JAX without 64-bit mode refuses int64 rather than wrap it into int32."""
    for name in ("int32", "bool"):
        assert dtype_name(backend.zeros(2, dtype=name)) == name
    assert backend.to_numpy(backend.asarray([1, 2], dtype="int32")).tolist() == [1, 2]
    with pytest.raises(ValueError, match="unknown dtype"):
        vecx.backend(backend.spec, dtype="int32")
    with pytest.raises(ValueError, match="unknown dtype"):
        backend.normal(0.0, 1.0, 2, dtype="int32")
    if backend.name == "jax" and "float64" not in backend.capabilities.dtypes:
        with pytest.raises(vecx.UnsupportedDtype, match="64-bit"):
            backend.asarray(np.array([1, 2**40]))
        with pytest.raises(vecx.UnsupportedDtype, match="64-bit"):
            backend.zeros(2, dtype="int64")
    else:
        assert backend.to_numpy(backend.asarray(np.array([1, 2**40]))).tolist() == [1, 2**40]


def test_asarray_and_to_numpy_round_trip(backend: Any) -> None:
    data = host((3, 2))
    x = backend.asarray(data)  # host float64 lands in the backend's default dtype
    assert dtype_name(x) == "float32" and tuple(x.shape) == (3, 2)
    back = backend.to_numpy(x)
    assert type(back) is np.ndarray and back.dtype == np.float32
    np.testing.assert_array_equal(back, data.astype(np.float32))
    assert_close(backend, backend.asarray([[1.0, 2.0], [3.0, 4.0]]), [[1, 2], [3, 4]])
    assert_close(backend, backend.asarray(x), data)  # a native array goes through too
    assert_close(backend, backend.asarray(2.5), 2.5)


def test_asarray_keeps_integers_integer(backend: Any) -> None:
    for obj in ([3, 0, 2], np.array([3, 0, 2]), np.array([3, 0, 2], dtype=np.int32)):
        x = backend.asarray(obj)
        assert dtype_name(x).startswith("int"), dtype_name(x)
        np.testing.assert_array_equal(backend.to_numpy(x), [3, 0, 2])
    assert dtype_name(backend.asarray([3, 0, 2], dtype="float32")) == "float32"


def test_bad_shapes_are_rejected(backend: Any) -> None:
    with pytest.raises(ValueError, match="negative"):
        backend.ones((2, -1))
    with pytest.raises(TypeError, match="shape"):
        backend.zeros("abc")


# --------------------------------------------------------------------------- randomness


def test_normal_same_seed_same_numbers(backend: Any) -> None:
    a = vecx.backend(backend.spec, seed=7)
    b = vecx.backend(backend.spec, seed=7)
    first = a.to_numpy(a.normal(0.0, 1.0, (4, 3)))
    np.testing.assert_array_equal(first, b.to_numpy(b.normal(0.0, 1.0, (4, 3))))
    second = a.to_numpy(a.normal(0.0, 1.0, (4, 3)))
    assert not np.array_equal(first, second)  # the generator moves on
    a.seed(7)
    np.testing.assert_array_equal(first, a.to_numpy(a.normal(0.0, 1.0, (4, 3))))
    other = vecx.backend(backend.spec, seed=8)
    assert not np.array_equal(first, other.to_numpy(other.normal(0.0, 1.0, (4, 3))))


def test_normal_shape_dtype_and_moments(backend: Any) -> None:
    x = backend.normal(2.0, 3.0, (200_000,))
    assert tuple(x.shape) == (200_000,) and dtype_name(x) == "float32"
    draws = backend.to_numpy(x).astype(np.float64)
    # standard errors: 3/sqrt(2e5) = 0.0067 for the mean, ~0.005 for the std
    assert abs(draws.mean() - 2.0) < 0.04
    assert abs(draws.std() - 3.0) < 0.03
    assert tuple(backend.normal(0.0, 1.0, 5).shape) == (5,)
    assert tuple(backend.normal(0.0, 1.0, (0, 2)).shape) == (0, 2)


def test_permutation_is_a_seeded_permutation(backend: Any) -> None:
    p = backend.permutation(50)
    values = backend.to_numpy(p)
    assert dtype_name(p).startswith("int")
    np.testing.assert_array_equal(np.sort(values), np.arange(50))
    assert not np.array_equal(values, np.arange(50))
    again = vecx.backend(backend.spec, seed=0)
    np.testing.assert_array_equal(values, again.to_numpy(again.permutation(50)))
    backend.seed(0)
    np.testing.assert_array_equal(values, backend.to_numpy(backend.permutation(50)))
    x = backend.asarray(np.arange(100.0).reshape(50, 2))
    rows = backend.to_numpy(backend.index(x, p))  # usable as an index as it is
    np.testing.assert_array_equal(rows[:, 0], 2.0 * values)


# --------------------------------------------------------------------------- matmul

SIZES = st.sampled_from([1, 3, 16])  # few shapes: JAX compiles once per shape


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(m=SIZES, k=SIZES, n=SIZES, seed=st.integers(0, 2**16))
def test_matmul_matches_float64_reference(backend: Any, m: int, k: int, n: int, seed: int) -> None:
    a = host((m, k), seed).astype(np.float32)
    b = host((k, n), seed + 1).astype(np.float32)
    got = backend.matmul(backend.asarray(a), backend.asarray(b))
    assert tuple(got.shape) == (m, n) and dtype_name(got) == "float32"
    want = a.astype(np.float64) @ b.astype(np.float64)
    assert_close(backend, got, want, scale=math.sqrt(k))


def test_matmul_vector_cases(backend: Any) -> None:
    a, v = host((4, 3)).astype(np.float32), host((3,), 1).astype(np.float32)
    A, V = backend.asarray(a), backend.asarray(v)
    assert_close(backend, backend.matmul(A, V), a.astype(np.float64) @ v)
    assert_close(backend, backend.matmul(V, A.T), v.astype(np.float64) @ a.T)
    assert_close(backend, backend.matmul(V, V), float(v.astype(np.float64) @ v))


def test_matmul_float64(backend: Any) -> None:
    a, b = host((5, 7)), host((7, 3), 1)
    with float64_mode(backend):
        be = vecx.backend(backend.spec, dtype="float64")
        got = be.matmul(be.asarray(a), be.asarray(b))
        assert dtype_name(got) == "float64"
        assert_close(be, got, a @ b)


def tf32_sentinel(n: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A float32 GEMM that TF32 (and bf16) gets visibly wrong: (a, b, float64 a @ b).

    256x256, so that cuBLAS/XLA pick a tensor-core kernel where TF32 is on (a (1,k)@(k,1)
    product goes to a dot kernel and passes either way). TF32 keeps 10 mantissa bits: it
    rounds 1 + 2**-12 to 1, so every entry comes out 256 instead of 256.0625. In float32
    each partial sum m * (1 + 2**-12), m <= 256, is exact in any order, so full float32
    gives 256.0625 to the last bit; float32's tolerance (not widened for k) is 0.005.
    """
    a = np.full((n, n), 1 + 2**-12, dtype=np.float32)
    b = np.ones((n, n), dtype=np.float32)
    return a, b, a.astype(np.float64) @ b.astype(np.float64)


def test_matmul_is_full_float32_by_default(backend: Any) -> None:
    a, b, want = tf32_sentinel()
    got = backend.matmul(backend.asarray(a), backend.asarray(b))
    assert_close(backend, got, want)


def test_the_tf32_sentinel_fails_under_tf32_rounding() -> None:
    a, b, want = tf32_sentinel()
    bits = a.view(np.uint32)  # round to nearest on 10 mantissa bits, as TF32 inputs are
    a_tf32 = (((bits + np.uint32(1 << 12)) >> 13) << 13).astype(np.uint32).view(np.float32)
    assert float(a_tf32[0, 0]) == 1.0
    numpy_be = vecx.backend("numpy")
    with pytest.raises(AssertionError):
        assert_close(numpy_be, a_tf32 @ b, want)
    assert_close(numpy_be, a @ b, want)


@pytest.mark.parametrize(("sa", "sb"), [((2, 3), (4, 5)), ((3,), (4,)), ((2, 3), (2,))])
def test_matmul_shape_mismatch_names_both_shapes(
    backend: Any, sa: tuple[int, ...], sb: tuple[int, ...]
) -> None:
    a, b = backend.ones(sa), backend.ones(sb)
    with pytest.raises(ValueError) as err:
        backend.matmul(a, b)
    assert str(sa) in str(err.value) and str(sb) in str(err.value)


def test_exp(backend: Any) -> None:
    data = np.linspace(-3.0, 3.0, 13)
    assert_close(backend, backend.exp(backend.asarray(data)), np.exp(data.astype(np.float32)))


# --------------------------------------------------------------------------- index

ROWS = np.arange(20.0).reshape(10, 2)


def index_forms(backend: Any, rows: list[int]) -> dict[str, Any]:
    return {
        "list": rows,
        "tuple": tuple(rows),
        "numpy int64": np.array(rows, dtype=np.int64),
        "numpy int32": np.array(rows, dtype=np.int32),
        "backend": backend.asarray(rows),
    }


@pytest.mark.parametrize("rows", [[3, 0, 3, 9], [-1, -10, 2], [5]])
def test_index_gathers_rows(backend: Any, rows: list[int]) -> None:
    x = backend.asarray(ROWS)
    for form, idx in index_forms(backend, rows).items():
        got = backend.index(x, idx)
        assert tuple(got.shape) == (len(rows), 2), form
        np.testing.assert_array_equal(backend.to_numpy(got), ROWS[rows], err_msg=form)


def test_index_empty_and_large(backend: Any) -> None:
    x = backend.asarray(ROWS)
    assert tuple(backend.index(x, []).shape) == (0, 2)
    many = np.random.default_rng(0).integers(-10, 10, 1000)  # past the small-array fast path
    np.testing.assert_array_equal(backend.to_numpy(backend.index(x, many)), ROWS[many])
    reversed_view = np.arange(10)[::-1]  # negative strides
    np.testing.assert_array_equal(backend.to_numpy(backend.index(x, reversed_view)), ROWS[::-1])


@pytest.mark.parametrize("bad", [10, -11, 1000])
def test_index_out_of_range_raises_on_every_backend(backend: Any, bad: int) -> None:
    x = backend.asarray(ROWS)
    for form, idx in index_forms(backend, [0, bad, 1]).items():
        with pytest.raises(IndexError, match=f"{bad}"):
            backend.index(x, idx)
            pytest.fail(f"no IndexError for {form}")
    many = np.zeros(1000, dtype=np.int64)
    many[-1] = bad
    with pytest.raises(IndexError):
        backend.index(x, many)


def test_index_with_a_constant_backend_index_inside_jit_and_grad(backend: Any) -> None:
    x = backend.asarray(ROWS)
    good, bad = backend.asarray([9, 0, 9]), backend.asarray([0, 10])
    picked = backend.jit(lambda x: backend.index(x, good).sum())(x)
    assert float(backend.to_numpy(picked)) == ROWS[[9, 0, 9]].sum()
    grad = backend.jit(backend.grad(lambda x: backend.index(x, good).sum()))(x)
    np.testing.assert_array_equal(backend.to_numpy(grad)[:, 0], [1, 0, 0, 0, 0, 0, 0, 0, 0, 2])
    with pytest.raises(IndexError, match="10"):
        backend.jit(lambda x: backend.index(x, bad).sum())(x)
    with pytest.raises(IndexError, match="10"):
        backend.grad(lambda x: backend.index(x, bad).sum())(x)


def test_jax_index_inside_jit_fills_instead_of_clamping() -> None:
    if not available("jax:cpu"):
        pytest.skip("jax:cpu is not available")
    be = vecx.backend("jax")
    x = be.asarray(ROWS)
    got = be.to_numpy(be.jit(be.index)(x, be.asarray([1, 50])))
    np.testing.assert_array_equal(got[0], ROWS[1])
    assert np.isnan(got[1]).all()  # not row 9, which plain JAX would return


# --------------------------------------------------------------------------- execution, info


def test_sync_returns_its_argument(backend: Any) -> None:
    x = backend.matmul(backend.ones((8, 8)), backend.ones((8, 8)))
    assert backend.sync(x) is x
    assert backend.sync() is None
    pair = (x, x)
    assert backend.sync(pair) is pair


def test_jit_gives_a_callable_with_the_same_result(backend: Any) -> None:
    def f(a: Any, b: Any) -> Any:
        return (backend.matmul(a, b) * 2.0 + 1.0).sum()

    a, b = backend.asarray(host((3, 4))), backend.asarray(host((4, 2), 1))
    fast = backend.jit(f)
    assert callable(fast)
    want = float(backend.to_numpy(f(a, b)))
    assert float(backend.to_numpy(fast(a, b))) == pytest.approx(want, rel=1e-5)
    assert float(backend.to_numpy(fast(a, b))) == pytest.approx(want, rel=1e-5)  # cached


def test_info_describes_the_backend(backend: Any) -> None:
    info = backend.info()
    assert info["framework"] == backend.name
    assert isinstance(info["version"], str) and info["version"][0].isdigit()
    assert isinstance(info["device_name"], str) and info["device_name"]
    assert info["dtype"] == "float32"
    assert info["device"] == backend.device
    assert info["matmul_precision"] == "float32"
    assert info["precision"] == "float32"


def test_precision_tf32_is_reported_and_reset(backend: Any) -> None:
    try:
        tf32 = vecx.backend(backend.spec, precision="tf32")
        info = tf32.info()
        assert info["precision"] == "tf32"
        # NumPy has no TF32 mode: it says what it does, full float32.
        assert info["matmul_precision"] == ("float32" if backend.name == "numpy" else "tf32")
    finally:  # the setting is process-wide in PyTorch, JAX and CuPy: a new backend resets it
        full = vecx.backend(backend.spec)
    assert full.info()["matmul_precision"] == "float32"


def test_torch_precision_is_read_back_from_the_process() -> None:
    """PyTorch's setting is process-wide: info() reports what is set now, and never raises
    (the legacy getter raises once anything used the torch >= 2.9 API)."""
    if not available("torch:cpu"):
        pytest.skip("torch:cpu is not available")
    import torch

    try:
        full = vecx.backend("torch")
        tf32 = vecx.backend("torch", precision="tf32")
        assert tf32.info()["matmul_precision"] == "tf32"
        assert full.info()["matmul_precision"] == "tf32"  # process-wide, as documented
        assert full.info()["precision"] == "float32"  # what this backend asked for
        again = vecx.backend("torch")
        assert again.info()["matmul_precision"] == full.info()["matmul_precision"] == "float32"
        if hasattr(torch.backends.cuda.matmul, "fp32_precision"):
            # someone else in the process uses the new API, then the legacy one
            torch.backends.cuda.matmul.fp32_precision = "tf32"
            assert again.info()["matmul_precision"] == "float32"  # CPU: oneDNN's setting
            torch.set_float32_matmul_precision("high")
            assert again.info()["matmul_precision"] == "tf32"
            torch.backends.mkldnn.matmul.fp32_precision = "ieee"
            assert again.info()["matmul_precision"] == "float32"
    finally:
        vecx.backend("torch")  # full float32 again for the rest of the process


def test_torch_precision_on_torch_without_the_new_api(monkeypatch: pytest.MonkeyPatch) -> None:
    if not available("torch:cpu"):
        pytest.skip("torch:cpu is not available")
    import torch

    from vecx.backends import torch as torch_backend

    monkeypatch.setattr(torch_backend, "_new_precision_api", lambda torch: False)
    try:
        tf32 = vecx.backend("torch", precision="tf32")
        assert torch.get_float32_matmul_precision() == "high"
        assert tf32.info()["matmul_precision"] == "tf32"
        assert vecx.backend("torch").info()["matmul_precision"] == "float32"
        assert torch.get_float32_matmul_precision() == "highest"

        def broken() -> str:
            raise RuntimeError("mix of the legacy and new APIs")

        monkeypatch.setattr(torch, "get_float32_matmul_precision", broken)
        assert tf32.info()["matmul_precision"].startswith("unknown (RuntimeError")
    finally:
        monkeypatch.undo()
        vecx.backend("torch")


@pytest.mark.parametrize("precision", ["tf16", "TF32", "high", ""])
def test_bad_precision_is_a_value_error(backend: Any, precision: str) -> None:
    with pytest.raises(ValueError, match="float32, tf32"):
        vecx.backend(backend.spec, precision=precision)


# --------------------------------------------------------------------------- JAX, GPU memory

PREALLOCATE = "XLA_PYTHON_CLIENT_PREALLOCATE"
JAX_FIRST = """
import json, os, sys
import vecx
{before}
vecx.{call}
print(json.dumps([os.environ.get("{var}"), "jax" in sys.modules]))
"""


def test_jax_does_not_preallocate_gpu_memory_unless_asked() -> None:
    if not available("jax:cpu"):
        pytest.skip("jax:cpu is not available")
    cases = [  # (preset value, code before, vecx call, the variable jax then sees)
        (None, "", 'backend("jax:cpu")', "false"),  # vecx imports jax first: no 75% grab
        (None, "", "list_backends()", "false"),  # discovery (vecx info, the pytest plugin) too
        ("true", "", 'backend("jax:cpu")', "true"),  # the user's setting wins
        (None, "import jax", 'backend("jax:cpu")', None),  # jax imported first: left alone
    ]
    procs = []
    for preset, before, call, _ in cases:  # in parallel: each one imports jax (~1.5 s)
        env = {k: v for k, v in os.environ.items() if k != PREALLOCATE}
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
        if preset is not None:
            env[PREALLOCATE] = preset
        code = JAX_FIRST.format(before=before, call=call, var=PREALLOCATE)
        procs.append(subprocess.Popen(
            [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        ))
    for proc, (preset, before, call, want) in zip(procs, cases, strict=True):
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        value, imported = json.loads(out.splitlines()[-1])
        assert imported and value == want, (preset, before, call)


def test_each_backend_reports_and_sets_its_own_threads(backend: Any) -> None:
    """thread_pools() names the pools the backend computes with; set_threads changes
    them where the framework allows it now (not XLA, not a GPU's host pools)."""
    from vecx.protocol import set_threads, thread_pools

    pools = thread_pools(backend)
    assert all({"pool", "library", "threads"} <= set(p) for p in pools)
    if backend.device != "cpu":
        assert pools == [] and set_threads(backend, 1) is False
        return
    assert pools, f"{backend.spec} reports no thread pool"
    before = pools[0]["threads"]
    if not set_threads(backend, 1):
        assert backend.name == "jax"  # XLA sizes its pools when JAX starts
        return
    try:
        assert thread_pools(backend)[0]["threads"] == 1
    finally:
        assert set_threads(backend, before)
    assert thread_pools(backend)[0]["threads"] == before


def test_a_dtype_object_is_a_name_or_one_clear_error() -> None:
    import numpy as np

    from vecx.protocol import check_dtype

    be = vecx.backend("numpy", dtype=np.dtype("float32"))
    assert be.dtype == "float32" and type(be.dtype) is str
    assert be.ones(2).dtype == np.float32
    with pytest.raises(TypeError, match="dtype must be a dtype name such as 'float32', got 3"):
        check_dtype(3)
    with pytest.raises(TypeError, match="dtype must be a dtype name"):
        vecx.backend("numpy", dtype=np.dtype("complex64"))
