"""The portable math ops: the same values, dtypes, edge cases and errors on every backend.

Values are checked against NumPy in float64 at the dtype's tolerance; gradients of the
ops are checked against central differences in ``test_autodiff.py``. Here: each op on
its own, the semantics the protocol promises where frameworks differ (``axis=()``,
``max`` returning values only, ties, clip's boundaries, Python scalars, saturation), and
random compositions of the ops (hypothesis), value and gradient, on every backend.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vecx
from vecx.testing import assert_close


def host(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


def dtype_name(x: Any) -> str:
    return str(x.dtype).removeprefix("torch.")


def numpy64() -> Any:
    return vecx.backend("numpy", dtype="float64")


UNARY = ["exp", "log", "tanh", "sigmoid", "sqrt", "abs"]
REFERENCE: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "exp": np.exp, "log": np.log, "tanh": np.tanh, "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "sqrt": np.sqrt, "abs": np.abs,
}  # fmt: skip
POSITIVE = {"log", "sqrt"}


@pytest.mark.parametrize("name", UNARY)
def test_elementwise_ops_match_float64(backend: Any, name: str) -> None:
    x = host((4, 3), 1)
    if name in POSITIVE:
        x = np.abs(x) + 0.1
    x32 = x.astype(np.float32)
    got = getattr(backend, name)(backend.asarray(x32))
    assert dtype_name(got) == "float32" and tuple(got.shape) == (4, 3)
    assert_close(backend, got, REFERENCE[name](x32.astype(np.float64)))


@pytest.mark.parametrize(
    "name, ref",
    [("maximum", np.maximum), ("minimum", np.minimum)],
)
def test_binary_ops_broadcast_and_take_scalars(backend: Any, name: str, ref: Any) -> None:
    a, b = host((4, 3), 2).astype(np.float32), host((3,), 3).astype(np.float32)
    op = getattr(backend, name)
    assert_close(backend, op(backend.asarray(a), backend.asarray(b)), ref(a, b))
    got = op(backend.asarray(a), 0.25)  # a Python scalar takes the array's dtype
    assert dtype_name(got) == "float32"
    assert_close(backend, got, ref(a, np.float32(0.25)))
    assert_close(backend, op(0.25, backend.asarray(a)), ref(a, np.float32(0.25)))


def test_where_and_clip(backend: Any) -> None:
    x = host((5, 2), 4).astype(np.float32)
    X = backend.asarray(x)
    got = backend.where(X > 0, X, 0.0)
    assert dtype_name(got) == "float32"
    assert_close(backend, got, np.where(x > 0, x, 0.0))
    assert_close(backend, backend.where(x > 0, X, -X), np.abs(x))  # a host condition too
    assert_close(backend, backend.clip(X, -0.5, 0.5), np.clip(x, -0.5, 0.5))
    assert_close(backend, backend.clip(X, lo=0.0), np.maximum(x, 0.0))
    assert_close(backend, backend.clip(X, hi=0.0), np.minimum(x, 0.0))
    with pytest.raises(ValueError, match="lo, hi"):
        backend.clip(X)


def test_scalars_alone_take_the_backends_dtype(backend: Any) -> None:
    for got in (backend.exp(0.5), backend.maximum(1.0, 2.0), backend.where(True, 1.0, 0.0)):
        assert dtype_name(got) == backend.dtype
    assert_close(backend, backend.exp(0.5), math.exp(0.5))
    assert_close(backend, backend.sum(3.0), 3.0)


REDUCTIONS: dict[str, Callable[..., np.ndarray]] = {
    "sum": np.sum, "mean": np.mean, "max": np.max, "min": np.min,
    "logsumexp": lambda x, axis=None, keepdims=False: np.log(
        np.sum(np.exp(x), axis=axis, keepdims=keepdims)),
}  # fmt: skip
AXES = [None, 0, 1, -1, (0, 2), (2, 0), [1], np.int64(1), (0, 1, 2)]


@pytest.mark.parametrize("name", list(REDUCTIONS))
@pytest.mark.parametrize("axis", AXES, ids=repr)
@pytest.mark.parametrize("keepdims", [False, True])
def test_reductions_over_any_axes(backend: Any, name: str, axis: Any, keepdims: bool) -> None:
    x = host((2, 3, 4), 5).astype(np.float32)
    got = getattr(backend, name)(backend.asarray(x), axis=axis, keepdims=keepdims)
    ref_axis = tuple(axis) if isinstance(axis, list) else axis
    want = REDUCTIONS[name](x.astype(np.float64), axis=ref_axis, keepdims=keepdims)
    assert tuple(got.shape) == np.shape(want)  # values only: never a (values, indices) pair
    assert dtype_name(got) == "float32"
    assert_close(backend, got, want, scale=4)


@pytest.mark.parametrize("name", list(REDUCTIONS))
def test_axis_empty_tuple_reduces_nothing(backend: Any, name: str) -> None:
    """``axis=()`` is the identity on every backend (torch's own ops reduce everything)."""
    x = host((2, 3), 6).astype(np.float32)
    got = getattr(backend, name)(backend.asarray(x), axis=())
    assert tuple(got.shape) == (2, 3)
    assert_close(backend, got, x)
    if not backend.capabilities.immutable_arrays:  # a new array, not a view of x
        X = backend.asarray(x)
        y = getattr(backend, name)(X, axis=())
        y[0, 0] = 100.0
        assert backend.to_numpy(X)[0, 0] == x[0, 0]


def test_reduction_errors_are_the_same_everywhere(backend: Any) -> None:
    X = backend.asarray(host((2, 3)).astype(np.float32))
    for bad in (2, -3, (0, 0), (0, 5)):
        with pytest.raises(ValueError, match="axis"):
            backend.sum(X, axis=bad)
    with pytest.raises(TypeError, match="axis"):
        backend.sum(X, axis=1.5)
    ints = backend.asarray(np.arange(6).reshape(2, 3))
    for name in ("mean", "logsumexp"):
        with pytest.raises(TypeError, match="floating-point"):
            getattr(backend, name)(ints)
    assert int(backend.to_numpy(backend.sum(ints))) == 15  # sum, max, min take integers
    assert int(backend.to_numpy(backend.max(ints))) == 5
    empty = backend.zeros((0, 3))
    for name in ("max", "min", "logsumexp"):
        with pytest.raises(ValueError, match="empty"):
            getattr(backend, name)(empty, axis=0)
    assert tuple(backend.sum(empty, axis=0).shape) == (3,)


def test_astype_and_isfinite(backend: Any) -> None:
    x = np.array([1.5, -np.inf, np.nan, 2.0], np.float32)
    X = backend.asarray(x)
    finite = backend.isfinite(X)
    np.testing.assert_array_equal(backend.to_numpy(finite), [True, False, False, True])
    assert dtype_name(finite) == "bool"
    as_int = backend.astype(backend.asarray([1.7, -2.2]), "int32")
    assert dtype_name(as_int) == "int32"
    np.testing.assert_array_equal(backend.to_numpy(as_int), [1, -2])
    mask = backend.astype(finite, "float32")
    assert dtype_name(mask) == "float32"
    np.testing.assert_array_equal(backend.to_numpy(mask), [1.0, 0.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="unknown dtype"):
        backend.astype(X, "float8")
    if "float16" in backend.capabilities.dtypes:
        assert dtype_name(backend.astype(X, "float16")) == "float16"
    if "bfloat16" not in backend.capabilities.dtypes:
        with pytest.raises(vecx.UnsupportedDtype):
            backend.astype(X, "bfloat16")


# --------------------------------------------------------------------------- semantics


def test_saturating_functions_have_finite_correct_gradients(backend: Any) -> None:
    """At +-100 the exp formulas users write give inf/inf = NaN; the ops do not."""
    z = backend.asarray(np.array([100.0, -100.0, 0.0], np.float32))
    for name, want in (("tanh", [0.0, 0.0, 1.0]), ("sigmoid", [0.0, 0.0, 0.25])):
        op = getattr(backend, name)
        assert np.isfinite(backend.to_numpy(op(z))).all()
        g = backend.to_numpy(backend.grad(lambda z, op=op: backend.sum(op(z)))(z))
        np.testing.assert_allclose(g, want, atol=1e-30, err_msg=name)
    lse = backend.logsumexp(z)
    np.testing.assert_allclose(float(backend.to_numpy(lse)), 100.0, rtol=1e-6)
    g = backend.to_numpy(backend.grad(backend.logsumexp)(z))
    np.testing.assert_allclose(g, [1.0, 0.0, math.exp(-100)], atol=1e-30)
    # a log-loss written with the ops stays finite for a confident, wrong logit
    loss = backend.grad(lambda z: -backend.sum(backend.log(backend.sigmoid(z))))
    assert np.isfinite(backend.to_numpy(loss(backend.asarray(np.float32([30.0]))))).all()


def test_ties_and_boundaries_have_one_gradient_everywhere(backend: Any) -> None:
    x = backend.asarray(np.array([1.0, 2.0, 2.0, -3.0], np.float32))
    g = lambda f: backend.to_numpy(backend.grad(f)(x)).tolist()  # noqa: E731
    assert g(lambda x: backend.sum(backend.maximum(x, 2.0))) == [0.0, 0.5, 0.5, 0.0]
    assert g(lambda x: backend.sum(backend.minimum(x, 1.0))) == [0.5, 0.0, 0.0, 1.0]
    assert g(lambda x: backend.max(x)) == [0.0, 0.5, 0.5, 0.0]  # shared by the ties
    assert g(lambda x: backend.min(x)) == [0.0, 0.0, 0.0, 1.0]
    assert g(lambda x: backend.sum(backend.clip(x, -3.0, 1.0))) == [1.0, 0.0, 0.0, 1.0]
    assert g(lambda x: backend.sum(backend.abs(x - 1.0))) == [0.0, 1.0, 1.0, -1.0]
    assert g(lambda x: backend.sum(backend.maximum(x, x))) == [1.0, 1.0, 1.0, 1.0]


def test_ops_inside_jit_and_grad_of_jit(backend: Any) -> None:
    def f(w: Any, X: Any, y: Any) -> Any:
        z = X @ w
        return backend.mean(backend.logsumexp(z, axis=1) - backend.sum(y * z, axis=1))

    w = backend.asarray(host((3, 4), 7).astype(np.float32))
    X = backend.asarray(host((5, 3), 8).astype(np.float32))
    y = backend.asarray(np.eye(4, dtype=np.float32)[[0, 1, 2, 3, 0]])
    eager = backend.value_and_grad(f)(w, X, y)
    jitted = backend.jit(backend.value_and_grad(f))(w, X, y)
    for a, b in zip(eager, jitted, strict=True):
        np.testing.assert_allclose(backend.to_numpy(a), backend.to_numpy(b), rtol=1e-5)


@pytest.mark.parametrize(
    "call, method",
    [
        (lambda x: np.log(x), "be.log"),
        (lambda x: np.tanh(x), "be.tanh"),
        (lambda x: np.maximum(x, 0.0), "be.maximum"),
        (lambda x: np.abs(x), "be.abs"),
        (lambda x: np.sum(x), "be.sum"),
        (lambda x: np.max(x), "be.max"),
        (lambda x: np.where(x > 0, x, 0.0), "be.where"),
        (lambda x: np.clip(x, 0, 1), "be.clip"),
    ],
)
def test_a_numpy_function_on_a_tracer_names_the_vecx_method(call: Any, method: str) -> None:
    be = vecx.backend("numpy")
    with pytest.raises(TypeError, match=method.replace(".", r"\.")):
        be.grad(lambda x: call(x).sum())(be.ones(3))


# --------------------------------------------------------------------------- compositions

LEAVES = ("x", "y")


@st.composite
def expressions(draw: Any, depth: int = 0) -> Any:
    """A random expression over two (3, 4) arrays: a nested tuple of op names."""
    if depth >= 3 or draw(st.integers(0, 3)) == 0:
        return draw(st.sampled_from(LEAVES))
    kind = draw(st.sampled_from(
        ["unary", "unary", "binary", "binary", "scalar", "reduce", "where", "clip"]))
    if kind == "unary":
        return (draw(st.sampled_from(["tanh", "sigmoid", "abs", "softplus", "neg", "square"])),
                draw(expressions(depth + 1)))  # fmt: skip
    if kind == "binary":
        return (draw(st.sampled_from(["+", "-", "*", "maximum", "minimum"])),
                draw(expressions(depth + 1)), draw(expressions(depth + 1)))  # fmt: skip
    if kind == "scalar":
        return ("scale", draw(st.sampled_from([0.5, -2.0, 3.0])), draw(expressions(depth + 1)))
    if kind == "reduce":
        return (draw(st.sampled_from(["sum", "mean", "max", "min", "logsumexp"])),
                draw(st.sampled_from([0, 1])), draw(expressions(depth + 1)))  # fmt: skip
    if kind == "where":
        return ("where", draw(expressions(depth + 1)), draw(expressions(depth + 1)))
    return ("clip", draw(expressions(depth + 1)))


def evaluate(be: Any, expr: Any, env: dict[str, Any]) -> Any:
    """The expression with the ops of ``be``; reductions keep dims, so shapes broadcast."""
    if isinstance(expr, str):
        return env[expr]
    op, *args = expr
    if op in ("tanh", "sigmoid", "abs"):
        return getattr(be, op)(evaluate(be, args[0], env))
    if op == "softplus":  # log(1 + exp(x)), written stably with the ops
        x = evaluate(be, args[0], env)
        return be.maximum(x, 0.0) + be.log(1.0 + be.exp(-be.abs(x)))
    if op == "neg":
        return -evaluate(be, args[0], env)
    if op == "square":
        return evaluate(be, args[0], env) ** 2
    if op == "scale":
        return args[0] * evaluate(be, args[1], env)
    if op in ("+", "-", "*"):
        a, b = evaluate(be, args[0], env), evaluate(be, args[1], env)
        return a + b if op == "+" else a - b if op == "-" else a * b
    if op in ("maximum", "minimum"):
        return getattr(be, op)(evaluate(be, args[0], env), evaluate(be, args[1], env))
    if op in ("sum", "mean", "max", "min", "logsumexp"):
        return getattr(be, op)(evaluate(be, args[1], env), axis=args[0], keepdims=True)
    if op == "where":
        a, b = evaluate(be, args[0], env), evaluate(be, args[1], env)
        return be.where(a > b, a, 2.0 * b)
    if op == "clip":
        return be.clip(evaluate(be, args[0], env), -0.5, 0.7)
    raise AssertionError(op)


def scalar_of(be: Any, expr: Any) -> Callable[[Any, Any], Any]:
    return lambda x, y: be.sum(evaluate(be, expr, {"x": x, "y": y}) * WEIGHTS)


WEIGHTS = np.linspace(-1.0, 1.0, 12).reshape(3, 4)


@contextlib.contextmanager
def no_numpy_warnings() -> Iterator[None]:
    with np.errstate(all="ignore"):
        yield


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(expr=expressions(), seed=st.integers(0, 2**16))
def test_random_compositions_agree_with_numpy_float64(backend: Any, expr: Any, seed: int) -> None:
    """Value and gradient of a random composition of the ops: backend (float32) against
    vecx's NumPy autodiff in float64, itself checked against finite differences below."""
    x, y = host((3, 4), seed), host((3, 4), seed + 1)
    ref = numpy64()
    with no_numpy_warnings():
        want_v, want_g = ref.value_and_grad(scalar_of(ref, expr), (0, 1))(x, y)
    weights = backend.asarray(WEIGHTS.astype(np.float32))
    f = lambda a, b: backend.sum(evaluate(backend, expr, {"x": a, "y": b}) * weights)  # noqa: E731
    with no_numpy_warnings():
        v, g = backend.value_and_grad(f, (0, 1))(
            backend.asarray(x.astype(np.float32)), backend.asarray(y.astype(np.float32))
        )
    scale = max(1.0, float(np.abs(want_v)))
    np.testing.assert_allclose(float(backend.to_numpy(v)), want_v, rtol=1e-4, atol=1e-4 * scale)
    for got, want in zip(g, want_g, strict=True):
        gscale = max(1.0, float(np.abs(want).max()))
        np.testing.assert_allclose(backend.to_numpy(got), want, rtol=2e-3, atol=2e-3 * gscale)


@settings(max_examples=40, deadline=None)
@given(expr=expressions(), seed=st.integers(0, 2**16))
def test_random_compositions_match_central_differences(expr: Any, seed: int) -> None:
    """The reference itself: vecx's float64 NumPy gradient against central differences,
    where the composition is smooth (no tie or boundary within the step)."""
    be = numpy64()
    x, y = host((3, 4), seed), host((3, 4), seed + 1)
    f = scalar_of(be, expr)
    with no_numpy_warnings():
        _, (gx, gy) = be.value_and_grad(f, (0, 1))(x, y)
        eps = 1e-6
        for arg, g in ((0, gx), (1, gy)):
            base = [x, y]
            for pos in np.ndindex(3, 4):
                plus, minus = [a.copy() for a in base], [a.copy() for a in base]
                plus[arg][pos] += eps
                minus[arg][pos] -= eps
                fp, fm = float(f(*plus)), float(f(*minus))
                # a kink (max, abs, clip, where) inside the step: differences are not a slope
                kinked = abs((fp - float(f(*base))) - (float(f(*base)) - fm)) > 1e-9
                if not kinked:
                    np.testing.assert_allclose(g[pos], (fp - fm) / (2 * eps), rtol=1e-5,
                                               atol=1e-6)


# --- found by review -------------------------------------------------------------------


def test_scalars_with_integer_arrays_promote_the_same_everywhere(backend: Any) -> None:
    """torch cast a float scalar to the integer tensor's dtype (maximum([1,2,3], 1.5) was
    [1, 2, 3]); float functions of integers now compute in the backend's dtype."""
    ints = backend.asarray(np.array([1, 2, 3]))
    np.testing.assert_allclose(host_of(backend, backend.maximum(ints, 1.5)), [1.5, 2.0, 3.0])
    np.testing.assert_allclose(host_of(backend, backend.minimum(ints, 2.5)), [1.0, 2.0, 2.5])
    np.testing.assert_allclose(host_of(backend, backend.clip(ints, hi=2.5)), [1.0, 2.0, 2.5])
    for got in (backend.exp(2), backend.sqrt(ints), backend.maximum(1, 2.5), backend.mean(3),
                backend.clip(3, 0, 2.5)):
        assert dtype_name(got) == backend.dtype, got
    assert float(host_of(backend, backend.maximum(1, 2.5))) == 2.5


def test_numpy_scalars_are_scalars(backend: Any) -> None:
    X = backend.asarray(np.array([-1.0, 2.0], np.float32))
    for got in (backend.maximum(X, np.float64(0.0)), backend.clip(X, np.float64(0.0), None),
                backend.where(X > 0, X, np.float32(0.0)), backend.exp(np.float64(1.0))):
        assert dtype_name(got) == "float32"
    np.testing.assert_array_equal(host_of(backend, backend.maximum(X, np.float64(0.0))),
                                  [0.0, 2.0])  # fmt: skip


def test_where_takes_one_kind_of_condition(backend: Any) -> None:
    X = backend.asarray(np.array([1.0, 2.0], np.float32))
    for cond in ([True, False], np.array([True, False]), backend.asarray(np.ones(2)) > 1.5):
        assert host_of(backend, backend.where(cond, X, 0.0)).shape == (2,)
    with pytest.raises(TypeError, match="boolean"):
        backend.where(backend.asarray(np.ones(2, np.float32)), X, 0.0)
    with pytest.raises(TypeError, match="boolean"):
        backend.where([1.0, 0.0], X, 0.0)


def test_clip_with_array_bounds_differentiates_every_operand(backend: Any) -> None:
    x = backend.asarray(np.array([[-2.0, 0.5, 3.0], [0.2, 5.0, -1.0]], np.float32))
    lo = backend.asarray(np.array([[-1.0], [0.0]], np.float32))  # broadcast bounds
    hi = backend.asarray(np.array([1.0], np.float32))
    gx, glo, ghi = backend.grad(lambda x, lo, hi: backend.sum(backend.clip(x, lo, hi)),
                                (0, 1, 2))(x, lo, hi)  # fmt: skip
    np.testing.assert_array_equal(host_of(backend, gx), [[0, 1, 0], [1, 0, 0]])
    np.testing.assert_array_equal(host_of(backend, glo), [[1.0], [1.0]])
    np.testing.assert_array_equal(host_of(backend, ghi), [2.0])


def host_of(be: Any, x: Any) -> np.ndarray:
    return np.asarray(be.to_numpy(x), dtype=np.float64)
