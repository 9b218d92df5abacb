"""Gradients on every backend: against central finite differences in float64, and against
each other in float32.

NumPy and CuPy use vecx's own reverse mode (``vecx/backends/_autodiff.py`` and its table
``_vjps.py``), PyTorch ``torch.autograd`` and JAX ``jax.value_and_grad``; the functions
below use only what the protocol promises (the operators, ``.sum() .mean()`` with axis and
keepdims, ``.reshape .T``, ``be.index`` and the backend's math methods), so one definition
serves all of them.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import vecx

EPS = 1e-6  # central differences in float64: truncation ~EPS**2, rounding ~1e-16/EPS


@contextlib.contextmanager
def float64_backend(backend: Any) -> Iterator[Any]:
    """The fixture's backend, rebuilt in float64 (JAX inside its 64-bit mode)."""
    if backend.name == "jax":
        import jax

        with jax.enable_x64(True):
            yield vecx.backend(backend.spec, dtype="float64")
    else:
        yield vecx.backend(backend.spec, dtype="float64")


@contextlib.contextmanager
def float64_mode(backend: Any) -> Iterator[None]:
    """Where float64 arrays can be made next to the float32 ones (JAX: its 64-bit mode)."""
    if backend.name == "jax":
        import jax

        with jax.enable_x64(True):
            yield
    else:
        yield


def available_specs() -> list[str]:
    return [s.spec for s in vecx.list_backends() if s.available]


def as_host(be: Any, x: Any) -> np.ndarray:
    return np.asarray(be.to_numpy(x), dtype=np.float64)


# --------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    name: str
    f: Callable[..., Any]  # f(be, *arrays) -> scalar
    shapes: tuple[tuple[int, ...], ...]
    positive: bool = False  # inputs in [0.5, 1.5], for / and ** 0.5

    def inputs(self, seed: int = 0) -> list[np.ndarray]:
        rng = np.random.default_rng(seed)
        if self.positive:
            return [rng.uniform(0.5, 1.5, s) for s in self.shapes]
        return [rng.standard_normal(s) for s in self.shapes]


def linreg_loss(be: Any, w: Any, b: Any, X: Any, y: Any) -> Any:
    """The d2l linear-regression step: squared loss averaged over the minibatch."""
    err = be.matmul(X, w) + b - y
    return (err**2 / 2).mean()


CASES = [
    Case("add bias (1,) to (10,1)", lambda be, x, b: ((x + b) ** 2).sum(), ((10, 1), (1,))),
    Case("sub row (3,) from (4,3)", lambda be, x, r: ((x - r) ** 2).mean(), ((4, 3), (3,))),
    Case("mul column (4,1)", lambda be, x, c: (x * c * x).sum(), ((4, 3), (4, 1))),
    Case("div by row (1,3)", lambda be, x, d: (x / d).sum() + (d / x).sum(), ((4, 3), (1, 3)),
         positive=True),
    Case("pow 2", lambda be, x: (x**2).sum(), ((3, 2),)),
    Case("pow 3", lambda be, x: (x**3).sum(), ((3, 2),)),
    Case("pow 0.5", lambda be, x: (x**0.5).sum(), ((3, 2),), positive=True),
    Case("unary minus", lambda be, x, y: ((-x) * y + -(y**2)).sum(), ((2, 3), (2, 3))),
    Case("matmul 2D@2D", lambda be, a, b: ((a @ b) ** 2).sum(), ((3, 4), (4, 2))),
    Case("matmul 2D@1D", lambda be, a, v: ((a @ v) ** 2).sum(), ((3, 4), (4,))),
    Case("matmul 1D@2D", lambda be, v, b: ((v @ b) ** 2).sum(), ((3,), (3, 2))),
    Case("matmul 1D@1D", lambda be, u, v: (u @ v) ** 2, ((4,), (4,))),
    Case("be.matmul", lambda be, a, b: (be.matmul(a, b) ** 2).mean(), ((2, 3), (3, 2))),
    Case("sum axis 0", lambda be, x: (x.sum(axis=0) ** 2).sum(), ((3, 4),)),
    Case("sum axis -1 keepdims", lambda be, x: (x.sum(axis=-1, keepdims=True) * x).sum(),
         ((3, 4),)),
    Case("mean axis 1", lambda be, x: (x.mean(axis=1) ** 2).sum(), ((3, 4),)),
    Case("mean axis 0 keepdims", lambda be, x: (x.mean(axis=0, keepdims=True) * x).mean(),
         ((3, 4),)),
    Case("mean axis (0, 2)", lambda be, x: (x.mean(axis=(0, 2)) ** 2).sum(), ((2, 3, 2),)),
    Case("reshape", lambda be, x, b: ((x.reshape(3, 4) @ b) ** 2).sum(), ((2, 6), (4, 2))),
    Case("reshape tuple", lambda be, x: (x.reshape((4, 3)) ** 3).sum(), ((2, 6),)),
    Case(".T", lambda be, a: ((a.T @ a) ** 2).sum(), ((4, 3),)),
    Case("index repeated, host list",
         lambda be, x: (be.index(x, [0, 0, 3, 4, 0]) ** 2).sum(), ((5, 2),)),
    Case("index repeated, backend ints",
         lambda be, x: (be.index(x, be.asarray([4, 1, 1, -1])) ** 3).sum(), ((5, 2),)),
    Case("exp", lambda be, x: (be.exp(x) * x).sum(), ((3, 2),)),
    Case("pow by a traced exponent", lambda be, x, p: (x**p).sum(), ((3, 2), (3, 2)),
         positive=True),
    Case("scalar to a traced power", lambda be, x: (2.0**x).sum() + (x**x).mean(), ((4,),),
         positive=True),
    Case("log", lambda be, x: (be.log(x) * x).sum(), ((3, 2),), positive=True),
    Case("tanh", lambda be, x: (be.tanh(x) ** 2).sum(), ((3, 2),)),
    Case("sigmoid", lambda be, x: (be.sigmoid(x) * x).sum(), ((3, 2),)),
    Case("sqrt", lambda be, x: (be.sqrt(x) * x).sum(), ((3, 2),), positive=True),
    Case("abs", lambda be, x: (be.abs(x) * x).sum() + abs(x).sum(), ((3, 2),)),
    Case("maximum, minimum", lambda be, x, y: (be.maximum(x, y) * be.minimum(x, y) ** 2).sum(),
         ((3, 2), (3, 2))),
    Case("maximum with a scalar (relu)", lambda be, x: (be.maximum(x, 0.0) ** 2).sum()
         + be.minimum(0.5, x).sum(), ((4, 3),)),
    Case("where", lambda be, x, y: be.where(x > 0, x * y, y**2).sum(), ((3, 3), (3, 3))),
    Case("clip", lambda be, x: (be.clip(x, -0.5, 0.5) * x).sum() + be.clip(x, hi=0.2).sum(),
         ((4, 3),)),
    Case("be.sum, be.mean over axes", lambda be, x: (be.sum(x, axis=(0, 2)) ** 2).sum()
         + be.mean(x * x, axis=-1, keepdims=True).sum(), ((2, 3, 2),)),
    Case("be.max, be.min", lambda be, x: be.max(x, axis=1).sum() - be.min(x * x)
         + be.max(x, axis=(0, 1), keepdims=True).sum(), ((3, 4),)),
    Case("logsumexp", lambda be, x: be.logsumexp(x) + (be.logsumexp(x, axis=0) ** 2).sum()
         + be.logsumexp(x, axis=1, keepdims=True).mean(), ((3, 4),)),
    Case("softmax cross-entropy", lambda be, z, y: (be.logsumexp(z, axis=1)
         - be.sum(y * z, axis=1)).mean(), ((5, 4), (5, 4))),
    Case("mlp", lambda be, x, w1, w2: (be.tanh(x @ w1) @ w2).mean()
         + be.sum(be.maximum(x @ w1, 0.0)) / 10, ((6, 3), (3, 4), (4, 2))),
    Case("scalar on the left", lambda be, x: ((2 - x) ** 2).sum() + (1 / x).sum()
         + (3 * x).mean() + (1 + x).sum(), ((2, 3),), positive=True),
    Case("size-1 output (1,1)", lambda be, w: w.T @ w, ((3, 1),)),
    Case("d2l linreg step", linreg_loss, ((2, 1), (1,), (10, 2), (10, 1))),
]
CASE = {c.name: c for c in CASES}


@functools.cache
def central_differences(case: Case) -> tuple[np.ndarray, ...]:
    """d f / d each argument, by central differences of f evaluated in NumPy float64.

    The function is the same on every backend (each test checks its value first), so one
    host evaluation serves all; evaluating on JAX would compile every perturbation's ops.
    """
    be = vecx.backend("numpy", dtype="float64")
    args = case.inputs()
    grads = []
    for i, x in enumerate(args):
        grad = np.zeros_like(x)
        for pos in np.ndindex(x.shape):
            values = []
            for step in (EPS, -EPS):
                trial = list(args)
                trial[i] = x.copy()
                trial[i][pos] += step
                values.append(float(np.asarray(case.f(be, *trial)).reshape(())))
            grad[pos] = (values[0] - values[1]) / (2 * EPS)
        grads.append(grad)
    return tuple(grads)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_value_and_grad_matches_central_differences(backend: Any, case: Case) -> None:
    with float64_backend(backend) as be:
        args = case.inputs()
        argnums = tuple(range(len(args)))
        # jit: one compilation per case on JAX instead of one per operation (the eager
        # path is checked below, in float32); NumPy and PyTorch run f as it is.
        value, grads = be.jit(be.value_and_grad(lambda *xs: case.f(be, *xs), argnums))(
            *[be.asarray(a) for a in args]
        )
        assert isinstance(grads, tuple) and len(grads) == len(args)
        want = case.f(vecx.backend("numpy", dtype="float64"), *args)
        np.testing.assert_allclose(as_host(be, value), want, rtol=1e-12)
        for i, g in enumerate(grads):
            assert tuple(g.shape) == args[i].shape, (case.name, i)
            np.testing.assert_allclose(
                as_host(be, g), central_differences(case)[i],
                rtol=1e-6, atol=1e-8, err_msg=f"{case.name}: argument {i}",
            )


def test_grad_agrees_with_value_and_grad_and_argnums(backend: Any) -> None:
    with float64_backend(backend) as be:
        args = [be.asarray(a) for a in CASE["d2l linreg step"].inputs()]
        _, (gw, gb) = be.value_and_grad(lambda *a: linreg_loss(be, *a), (0, 1))(*args)
        f = lambda *a: linreg_loss(be, *a)  # noqa: E731
        only_w = be.grad(f)(*args)  # argnums=0: the gradient itself, not a 1-tuple
        assert tuple(only_w.shape) == (2, 1)
        np.testing.assert_array_equal(as_host(be, only_w), as_host(be, gw))
        only_b = be.grad(f, argnums=1)(*args)
        np.testing.assert_array_equal(as_host(be, only_b), as_host(be, gb))
        one_tuple = be.grad(f, argnums=(1,))(*args)
        assert isinstance(one_tuple, tuple) and len(one_tuple) == 1
        np.testing.assert_array_equal(as_host(be, one_tuple[0]), as_host(be, gb))
        gx, gw2 = be.grad(f, argnums=(2, 0))(*args)  # in the order asked for
        assert tuple(gx.shape) == (10, 2)
        np.testing.assert_array_equal(as_host(be, gw2), as_host(be, gw))
        # the hand-written d2l gradient
        w, b, X, y = (as_host(be, a) for a in args)
        err = X @ w + b - y
        np.testing.assert_allclose(as_host(be, gw), X.T @ err / 10, rtol=1e-12)
        np.testing.assert_allclose(as_host(be, gb), err.mean(axis=0), rtol=1e-12)


def test_structured_arguments_give_gradients_of_the_same_structure(backend: Any) -> None:
    with float64_backend(backend) as be:
        rng = np.random.default_rng(1)
        w, b, X = (be.asarray(rng.standard_normal(s)) for s in ((2, 1), (1,), (5, 2)))

        def loss(params: Any, X: Any, scale: float, mode: str) -> Any:
            assert isinstance(scale, float) and mode == "sum"  # passed through untouched
            if isinstance(params, dict):
                w, b = params["w"], params["inner"]["b"] if "inner" in params else params["b"]
            else:
                w, b = params
            return ((be.matmul(X, w) + b) ** 2).sum() * scale

        want = be.grad(lambda w, b: loss((w, b), X, 1.5, "sum"), (0, 1))(w, b)
        for params, get in [
            ({"w": w, "b": b}, lambda g: (g["w"], g["b"])),
            ((w, b), lambda g: tuple(g)),
            ([w, b], lambda g: tuple(g)),
            ({"w": w, "inner": {"b": b}}, lambda g: (g["w"], g["inner"]["b"])),
        ]:
            value, grads = be.value_and_grad(loss)(params, X, 1.5, "sum")
            assert type(grads) is type(params)
            if isinstance(params, dict):
                assert grads.keys() == params.keys()
            if isinstance(params, dict) and "inner" in params:
                assert isinstance(grads["inner"], dict) and grads["inner"].keys() == {"b"}
            for g, expected in zip(get(grads), want, strict=True):
                np.testing.assert_allclose(as_host(be, g), as_host(be, expected), rtol=1e-12)


def test_argument_not_used_gets_zeros(backend: Any) -> None:
    x, y = backend.asarray(np.ones((2, 3))), backend.asarray(np.full(4, 2.0))
    gx, gy = backend.grad(lambda x, y: (y**2).sum(), (0, 1))(x, y)
    assert tuple(gx.shape) == (2, 3)
    np.testing.assert_array_equal(backend.to_numpy(gx), np.zeros((2, 3)))
    np.testing.assert_allclose(backend.to_numpy(gy), np.full(4, 4.0))
    value, g = backend.value_and_grad(lambda x: 3.0)(x)  # no dependence at all
    assert float(backend.to_numpy(backend.asarray(value))) == 3.0
    np.testing.assert_array_equal(backend.to_numpy(g), np.zeros((2, 3)))


@pytest.mark.parametrize(
    "f", [lambda x: x * 2, lambda x: x.sum(axis=0), lambda x: x @ x.T], ids=["2x", "sum0", "xxT"]
)
def test_non_scalar_output_is_a_value_error(backend: Any, f: Callable[[Any], Any]) -> None:
    x = backend.ones((3, 2))
    with pytest.raises(ValueError, match="scalar"):
        backend.grad(f)(x)
    with pytest.raises(ValueError, match="scalar"):
        backend.value_and_grad(f)(x)


def test_bad_argnums(backend: Any) -> None:
    x = backend.ones(2)
    with pytest.raises(TypeError, match="argnums"):
        backend.grad(lambda x: x.sum(), argnums=())
    with pytest.raises(ValueError, match="argnums 3 is out of range"):
        backend.grad(lambda x: x.sum(), argnums=3)(x)


def test_comparisons_are_constant_masks_of_the_values(backend: Any) -> None:
    """``x == y`` inside f is the comparison of the values, not differentiated (JAX's rule)."""
    data, other = np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.0, 2.0, 5.0, 4.0])
    x, y = backend.asarray(data), backend.asarray(other)
    masks = {
        "==": lambda x, y: x == y, "!=": lambda x, y: x != y, "<": lambda x, y: x < y,
        "<=": lambda x, y: x <= y, ">": lambda x, y: x > y, ">=": lambda x, y: x >= y,
        "< const": lambda x, y: x < 2.5, "const <": lambda x, y: 2.5 < x,
    }
    want = {
        "==": data == other, "!=": data != other, "<": data < other, "<=": data <= other,
        ">": data > other, ">=": data >= other, "< const": data < 2.5, "const <": 2.5 < data,
    }
    for op, mask in masks.items():
        value, g = backend.value_and_grad(lambda x, mask=mask: (x * x * mask(x, y)).sum())(x)
        assert float(backend.to_numpy(value)) == (data * data * want[op]).sum(), op
        np.testing.assert_array_equal(backend.to_numpy(g), 2 * data * want[op], err_msg=op)
        # y traced too: the mask still carries no gradient
        gy = backend.grad(lambda x, y, mask=mask: (y * mask(x, y)).sum(), 1)(x, y)
        np.testing.assert_array_equal(backend.to_numpy(gy), want[op].astype(float), err_msg=op)
    # Python control flow on a compared value picks the branch, as in eager JAX and PyTorch
    branch = backend.grad(lambda x: (x * 3.0).sum() if x.sum() > 5 else (x * 2.0).sum())
    np.testing.assert_array_equal(backend.to_numpy(branch(x)), np.full(4, 3.0))


def test_gradients_keep_the_dtype_of_their_argument(backend: Any) -> None:
    """float32 parameters times a float64 constant: float32 gradients (as in JAX, PyTorch)."""
    with float64_mode(backend):
        w = backend.asarray([1.0, 2.0])
        c = backend.asarray([0.5, 3.0], dtype="float64")
        g = backend.grad(lambda w: (w * c).sum() + (w * w).mean())(w)
        assert str(g.dtype).removeprefix("torch.") == "float32"
        np.testing.assert_allclose(backend.to_numpy(g), [1.5, 5.0])
        gd = backend.grad(lambda d: (d["w"] * c).sum(), 0)({"w": w})
        assert str(gd["w"].dtype).removeprefix("torch.") == "float32"


def test_python_floats_and_host_arrays_are_differentiable_everywhere(backend: Any) -> None:
    g = backend.grad(lambda x: x**3)(2.0)  # in the backend's dtype, as JAX does
    assert float(backend.to_numpy(g)) == 12.0
    assert str(g.dtype).removeprefix("torch.") == backend.dtype
    ga, gb = backend.grad(lambda pair: pair[0] * pair[1] ** 2)([2.0, 3.0])
    assert float(backend.to_numpy(ga)) == 9.0 and float(backend.to_numpy(gb)) == 12.0
    host = backend.grad(lambda x: (x**3).sum())(np.array([1.0, 2.0], np.float32))
    np.testing.assert_allclose(backend.to_numpy(host), [3.0, 12.0])
    assert str(host.dtype).removeprefix("torch.") == "float32"


def test_a_float64_host_argument_keeps_its_dtype_or_is_an_error(backend: Any) -> None:
    """One rule on every backend: the gradient has its argument's dtype. JAX without 64-bit
    mode cannot hold a float64 argument, so it says so instead of returning float32."""
    f = backend.grad(lambda x: (x**3).sum())
    if "float64" not in backend.capabilities.dtypes:
        with pytest.raises(vecx.UnsupportedDtype, match="64-bit mode"):
            f(np.array([1.0, 2.0]))
        return
    g = f(np.array([1.0, 2.0]))
    assert str(g.dtype).removeprefix("torch.") == "float64"
    np.testing.assert_allclose(backend.to_numpy(g), [3.0, 12.0])


def test_integer_arguments_are_a_type_error_everywhere(backend: Any) -> None:
    for bad in (2, backend.asarray([1, 2]), np.array([1, 2])):
        with pytest.raises(TypeError):
            backend.grad(lambda x: (x * 2.0).sum())(bad)


def test_nested_grad_is_right_or_a_type_error(backend: Any) -> None:
    """JAX and PyTorch differentiate through an inner grad; vecx's NumPy/CuPy autodiff
    refuses (it returned 0 before)."""
    ones = backend.ones(3)
    nested = {
        "grad(grad(x**3))(2)": (lambda: backend.grad(backend.grad(lambda x: x**3))(2.0), 12.0),
        "third derivative": (
            lambda: backend.grad(backend.grad(backend.grad(lambda x: x**3)))(2.0), 6.0,
        ),
        "inner grad closes over x": (
            lambda: backend.grad(
                lambda x: backend.grad(lambda y: (x * y * y).sum())(ones).sum()
            )(ones * 5.0),
            [2.0, 2.0, 2.0],
        ),
        "through the inner value": (
            lambda: backend.grad(
                lambda x: backend.value_and_grad(lambda y: (y**3).sum())(x)[0]
            )(ones * 2.0),
            [12.0, 12.0, 12.0],
        ),
    }
    for name, (make, want) in nested.items():
        if backend.name in ("numpy", "cupy"):
            with pytest.raises(TypeError, match="nested differentiation is not supported"):
                make()
        else:
            np.testing.assert_allclose(backend.to_numpy(make()), want, err_msg=name)


# --------------------------------------------------------------------------- NumPy specifics


@pytest.mark.parametrize(
    "f",
    [
        lambda x, y: np.sin(x).sum(),
        lambda x, y: np.exp(x).sum(),  # be.exp is the supported spelling
        lambda x, y: np.sum(x),
        lambda x, y: x.sum() if x.sum() else y.sum(),
        lambda x, y: np.asarray(x).sum(),  # would be an object array, cut off from the tape
        lambda x, y: (x + np.asarray(y)).sum(),
        lambda x, y: float(x.sum()) * y.sum(),
    ],
    ids=["np.sin", "np.exp", "np.sum", "truth value", "np.asarray", "asarray arg", "float()"],
)
def test_unsupported_op_on_numpy_tracer_is_a_type_error(f: Callable[..., Any]) -> None:
    be = vecx.backend("numpy")
    x, y = be.ones(3), be.ones(3)
    with pytest.raises(TypeError):
        be.grad(f, (0, 1))(x, y)


@pytest.mark.parametrize(
    "case",
    [CASE[name] for name in (
        "add bias (1,) to (10,1)", "pow 2", "sum axis 0", "mean axis 0 keepdims",
        "index repeated, host list", "size-1 output (1,1)", "d2l linreg step", "unary minus",
    )] + [
        Case("identity of size 1", lambda be, x: x, ((1,),)),
        Case("0-d argument", lambda be, x, y: (x * y).sum(), ((), (3,))),
        Case("sum of (1,)", lambda be, x: x.sum(axis=0, keepdims=True).sum(), ((1,),)),
        Case("shared gradient", lambda be, x, y: ((x + y) * 2.0).sum(), ((3,), (3,))),
    ],
    ids=lambda c: c.name,
)
def test_numpy_gradients_are_plain_writeable_arrays(case: Case) -> None:
    be = vecx.backend("numpy", dtype="float64")
    args = case.inputs()
    grads = be.grad(lambda *xs: case.f(be, *xs), tuple(range(len(args))))(*args)
    for g, a in zip(grads, args, strict=True):
        assert type(g) is np.ndarray and g.shape == a.shape and g.dtype == a.dtype
        assert g.flags.writeable
        assert not any(np.shares_memory(g, other) for other in args)
        g += 1.0  # must not fail, nor change anything the caller owns
    for a, before in zip(args, case.inputs(), strict=True):
        np.testing.assert_array_equal(a, before)


def test_numpy_nested_differentiation_is_a_type_error_not_zero() -> None:
    be = vecx.backend("numpy")
    x, ones = be.asarray(2.0), be.ones(3)
    nested = [
        lambda: be.grad(be.grad(lambda x: x**3))(x),  # the outer tracer as the argument
        lambda: be.grad(lambda x: be.grad(lambda y: (x * y).sum())(ones).sum())(ones),
        lambda: be.grad(lambda x: be.grad(lambda y: (y @ x))(ones).sum())(ones),
        lambda: be.value_and_grad(lambda x: be.grad(lambda y: x.sum())(ones).sum())(ones),
        lambda: be.grad(lambda x: be.grad(lambda p: p["a"].sum())({"a": x}).sum())(ones),
    ]
    for make in nested:
        with pytest.raises(TypeError, match="nested differentiation is not supported"):
            make()
    assert float(be.grad(lambda x: x**3)(x)) == 12.0  # one level is fine


def test_numpy_float_arguments_are_accepted_integer_ones_refused() -> None:
    for dtype in ("float32", "float64"):
        be = vecx.backend("numpy", dtype=dtype)
        g = be.grad(lambda x: x**3)(2.0)
        assert float(g) == 12.0 and g.dtype == np.dtype(dtype)
    be = vecx.backend("numpy")
    g64 = be.grad(lambda x: (x**2).sum())(np.array([1.0, 2.0]))  # a host array keeps its dtype
    assert g64.dtype == np.float64
    for bad in (2, np.array([1, 2]), [1.0, 2]):
        with pytest.raises(TypeError, match="floating-point"):
            be.grad(lambda x: (x[0] if isinstance(x, list) else x).sum())(bad)


def test_numpy_gradient_dtype_follows_the_argument_not_the_constants() -> None:
    be = vecx.backend("numpy")
    for dtype in (np.float16, np.float32):
        w = np.array([1.0, 2.0], dtype=dtype)
        g = be.grad(lambda w: (w * np.float64(2.0)).sum() + (w * np.ones(2)).sum())(w)
        assert g.dtype == dtype and g.flags.writeable
        np.testing.assert_array_equal(g, [3.0, 3.0])


def test_numpy_float32_gradients_stay_float32() -> None:
    be = vecx.backend("numpy")
    args = [be.asarray(a) for a in CASE["d2l linreg step"].inputs()]
    gw, gb = be.grad(lambda *a: linreg_loss(be, *a), (0, 1))(*args)
    assert gw.dtype == gb.dtype == np.float32


# --------------------------------------------------------------------------- cross-backend


AGREEMENT = [  # a cross-section; every case is checked per backend in float64 above
    CASE[name] for name in (
        "add bias (1,) to (10,1)", "div by row (1,3)", "matmul 2D@1D", "mean axis 0 keepdims",
        "reshape", ".T", "index repeated, backend ints", "exp", "scalar on the left",
        "d2l linreg step", "log", "sigmoid", "maximum with a scalar (relu)", "where", "clip",
        "be.max, be.min", "logsumexp", "softmax cross-entropy", "mlp",
    )
]


@pytest.mark.parametrize("case", AGREEMENT, ids=lambda c: c.name)
def test_backends_agree_in_float32(case: Case) -> None:
    """Same function, same host float32 inputs: the same gradients on every backend."""
    args = [a.astype(np.float32) for a in case.inputs(seed=3)]
    argnums = tuple(range(len(args)))
    results = {}
    for spec in available_specs():
        be = vecx.backend(spec)
        grads = be.grad(lambda *xs, be=be: case.f(be, *xs), argnums)(
            *[be.asarray(a) for a in args]
        )
        results[spec] = [as_host(be, g) for g in grads]
    assert len(results) >= 1
    reference = vecx.backend("numpy", dtype="float64")
    want = reference.grad(lambda *xs: case.f(reference, *xs), argnums)(
        *[a.astype(np.float64) for a in args]
    )
    for spec, grads in results.items():
        for i, (g, w) in enumerate(zip(grads, want, strict=True)):
            scale = max(1.0, float(np.abs(w).max()))
            np.testing.assert_allclose(
                g, w, rtol=1e-4, atol=1e-5 * scale, err_msg=f"{spec}, argument {i}"
            )
