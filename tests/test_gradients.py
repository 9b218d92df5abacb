"""No silently wrong gradient: each case here gave a wrong gradient (zeros, NaN, a stale
index, a repeated random draw) without an error on some backend, and must now give the
right one or one clear error, the same on every backend."""

from __future__ import annotations

import collections
from typing import Any

import numpy as np
import pytest

import vecx


def host(be: Any, x: Any) -> np.ndarray:
    return np.asarray(be.to_numpy(x), dtype=np.float64)


def test_power_zero_has_gradient_zero_at_zero(backend: Any) -> None:
    """Polynomial features ``x ** 0``: NumPy's tape gave 0 * 0**-1 = NaN at x = 0."""
    x = backend.zeros((3,))
    g = backend.grad(lambda x: (x**0 + x**1 + x**2).sum())(x)
    np.testing.assert_array_equal(host(backend, g), [1.0, 1.0, 1.0])


@pytest.mark.xfail_backends(
    "jax", reason="JAX's own ** gives p * x**(p - 1) = NaN at x = 0, p = 0 for an array p; "
    "vecx cannot change a framework's operator"
)
def test_an_array_exponent_of_zero_has_gradient_zero_at_zero(backend: Any) -> None:
    x = backend.zeros((3,))
    p = backend.asarray(np.array([0.0, 1.0, 2.0], np.float32))
    gx, gp = backend.grad(lambda x, p: (x**p).sum(), (0, 1))(x, p)
    np.testing.assert_array_equal(host(backend, gx), [0.0, 1.0, 0.0])
    np.testing.assert_array_equal(host(backend, gp), [0.0, 0.0, 0.0])


@pytest.mark.parametrize(
    "out",
    [lambda v: (v, v), lambda v: [v], lambda v: {"loss": v}],
    ids=["tuple", "list", "dict"],
)
def test_a_container_output_is_one_clear_error_everywhere(backend: Any, out: Any) -> None:
    x = backend.ones((2,))
    with pytest.raises(TypeError, match="has_aux=True"):
        backend.grad(lambda x: out((x * x).sum()))(x)


def test_has_aux_returns_the_aux_output_as_jax_does(backend: Any) -> None:
    x = backend.asarray(np.array([1.0, 2.0], np.float32))

    def f(x: Any) -> Any:
        loss = (x * x).sum()
        return loss, {"loss": loss, "double": x * 2}

    (value, aux), g = backend.value_and_grad(f, has_aux=True)(x)
    assert float(host(backend, value)) == 5.0
    np.testing.assert_array_equal(host(backend, aux["double"]), [2.0, 4.0])
    np.testing.assert_array_equal(host(backend, g), [2.0, 4.0])
    assert float(host(backend, aux["loss"])) == 5.0  # a plain value, usable after the call
    g2, aux2 = backend.grad(f, has_aux=True)(x)
    np.testing.assert_array_equal(host(backend, g2), [2.0, 4.0])
    with pytest.raises(TypeError, match="pair"):
        backend.grad(lambda x: (x * x).sum(), has_aux=True)(x)


def test_a_repeated_argnum_gets_its_gradient_every_time(backend: Any) -> None:
    x = backend.asarray(np.array([1.0, 2.0], np.float32))
    y = backend.asarray(np.array([3.0, 4.0], np.float32))
    gx1, gx2, gy = backend.grad(lambda x, y: (x * y).sum(), (0, 0, 1))(x, y)
    for g, want in ((gx1, [3.0, 4.0]), (gx2, [3.0, 4.0]), (gy, [1.0, 2.0])):
        np.testing.assert_array_equal(host(backend, g), want)
    g = backend.grad(lambda x, y: (x * y).sum(), (-1, 1))(x, y)  # -1 and 1: one argument
    np.testing.assert_array_equal(host(backend, g[0]), host(backend, g[1]))


@pytest.mark.parametrize(
    "convert",
    [lambda be, v: float(v), lambda be, v: be.to_numpy(v), lambda be, v: v.tolist(),
     lambda be, v: v.item(), lambda be, v: int(v)],
    ids=["float", "to_numpy", "tolist", "item", "int"],
)
def test_turning_a_traced_value_into_a_constant_is_an_error(backend: Any, convert: Any) -> None:
    """On torch these silently cut the gradient; NumPy's tape and JAX raise."""
    x = backend.ones((2,))
    with pytest.raises(TypeError):
        backend.grad(lambda x: (x * x).sum() * convert(backend, (x * x).sum()))(x)
    # outside a gradient, and on values that do not depend on the arguments, it works
    c = backend.asarray(np.float32(3.0))
    g = backend.grad(lambda x: (x * x).sum() * float(np.asarray(convert(backend, c))))(x)
    np.testing.assert_array_equal(host(backend, g), [6.0, 6.0])
    assert float(convert(backend, (x * x).sum())) == 2.0


@pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad")  # torch's own
def test_torch_guard_leaves_other_threads_and_plain_use_alone() -> None:
    pytest.importorskip("torch")
    import threading

    import torch

    be = vecx.backend("torch")
    be.grad(lambda x: (x * x).sum())(be.ones(2))  # installs the guard
    t = torch.ones(2, requires_grad=True)
    assert float((t * 2).sum()) == 4.0 and (t * 2).tolist() == [2.0, 2.0]
    seen = []
    inside = threading.Event()
    done = threading.Event()

    def f(x: Any) -> Any:
        inside.set()
        done.wait(5)
        return (x * x).sum()

    worker = threading.Thread(target=lambda: be.grad(f)(be.ones(2)))
    worker.start()
    inside.wait(5)
    seen.append(float((t * 3).sum()))  # this thread is not inside a vecx gradient
    done.set()
    worker.join(5)
    assert seen == [6.0]


def test_an_index_changed_in_place_does_not_change_an_earlier_gather(backend: Any) -> None:
    E = backend.asarray(np.arange(12.0, dtype=np.float32).reshape(6, 2))
    idx = np.array([0, 1, 2])

    def loss(E: Any) -> Any:
        first = backend.index(E, idx)
        idx[:] = [3, 4, 5]  # the caller reuses its buffer for the next gather
        second = backend.index(E, idx)
        idx[:] = [0, 1, 2]
        return first.sum() + 2 * second.sum()

    g = host(backend, backend.grad(loss)(E))
    np.testing.assert_array_equal(g, [[1, 1], [1, 1], [1, 1], [2, 2], [2, 2], [2, 2]])


def test_jax_draws_inside_jit_are_fresh_on_every_call_or_an_error() -> None:
    """A key split while tracing was kept: every call drew the same numbers, and the next
    draw outside raised UnexpectedTracerError. Now be.jit(f, rng=True) passes the key
    through, and without it a draw is one clear error that leaves the backend usable."""
    pytest.importorskip("jax")
    import jax

    be = vecx.backend("jax", seed=5)
    noisy = be.jit(lambda x: x + be.normal(0.0, 1.0, (4,)), rng=True)
    a, b = host(be, noisy(be.zeros(4))), host(be, noisy(be.zeros(4)))
    assert not np.array_equal(a, b)
    after = host(be, be.normal(0.0, 1.0, (4,)))  # the backend's key is concrete again
    assert np.isfinite(after).all()
    again = vecx.backend("jax", seed=5)
    noisy_again = again.jit(lambda x: x + again.normal(0.0, 1.0, (4,)), rng=True)
    np.testing.assert_array_equal(host(again, noisy_again(again.zeros(4))), a)
    shuffled = be.jit(lambda x: be.index(x, be.permutation(4)), rng=True)
    assert sorted(host(be, shuffled(be.asarray([1.0, 2.0, 3.0, 4.0])))) == [1, 2, 3, 4]
    for compile_ in (be.jit, jax.jit):
        with pytest.raises(vecx.TracedRandomness, match="rng=True"):
            compile_(lambda x: x + be.normal(0.0, 1.0, (4,)))(be.zeros(4))
    assert np.isfinite(host(be, be.normal(0.0, 1.0, (2,)))).all()


def test_draws_inside_jit_with_rng_work_on_every_backend(backend: Any) -> None:
    f = backend.jit(lambda x: x + backend.normal(0.0, 1.0, (3,)), rng=True)
    a, b = host(backend, f(backend.zeros(3))), host(backend, f(backend.zeros(3)))
    assert not np.array_equal(a, b) and np.isfinite(a).all()


def test_a_gradient_has_its_arguments_dtype_or_there_is_an_error(backend: Any) -> None:
    """float64 host data on a float32 backend: float64 gradients where the backend can
    hold float64; JAX without 64-bit mode says so instead of returning float32."""
    f = backend.grad(lambda x: (x * x).sum())
    x64 = np.array([1.0, 2.0])
    if "float64" in backend.capabilities.dtypes:
        g = f(x64)
        assert str(g.dtype).removeprefix("torch.") == "float64"
    else:
        with pytest.raises(vecx.UnsupportedDtype):
            f(x64)
    g32 = f(np.array([1.0, 2.0], np.float32))
    assert str(g32.dtype).removeprefix("torch.") == "float32"


Params = collections.namedtuple("Params", "w b")


def test_namedtuples_and_none_leaves_are_pytrees_everywhere(backend: Any) -> None:
    w = backend.asarray(np.array([1.0, 2.0], np.float32))
    params = Params(w=w, b=None)
    g = backend.grad(lambda p: (p.w * p.w).sum())(params)
    assert isinstance(g, Params) and g.b is None
    np.testing.assert_array_equal(host(backend, g.w), [2.0, 4.0])
    nested = {"layers": [Params(w, w), Params(w, None)], "frozen": None}
    gn = backend.grad(lambda p: sum((q.w * q.w).sum() for q in p["layers"]))(nested)
    assert gn["frozen"] is None and gn["layers"][1].b is None
    np.testing.assert_array_equal(host(backend, gn["layers"][0].b), [0.0, 0.0])


def test_numpy_integer_axes_work_on_tracers(backend: Any) -> None:
    x = backend.asarray(np.ones((2, 3), np.float32))
    g = backend.grad(lambda x: (x.sum(axis=np.int64(1)) ** 2).sum())(x)
    np.testing.assert_array_equal(host(backend, g), np.full((2, 3), 6.0))
    g2 = backend.grad(lambda x: backend.sum(backend.max(x, axis=np.int32(0))))(x)
    assert host(backend, g2).sum() == 3.0


# --- found by review: each of these was wrong without an error ------------------------------


def test_a_constant_changed_in_place_inside_f_is_never_a_stale_gradient(
    backend: Any,
) -> None:
    """A work buffer reused after an operation whose VJP needs it: NumPy's tape kept a
    reference and gave [210, 252] instead of [158, 200]. Now the tape keeps its own copy
    (PyTorch raises on a changed saved tensor; JAX arrays are immutable)."""
    if backend.capabilities.immutable_arrays:
        pytest.skip("arrays cannot be written in place")
    X = backend.asarray(np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], np.float32))
    buf = backend.zeros((2,))

    def loss(w: Any) -> Any:
        total = 0.0
        for i in range(3):
            buf[:] = X[i]
            total = total + (buf @ w) ** 2
        return total

    try:
        g = backend.grad(loss)(backend.ones((2,)))
    except RuntimeError as exc:  # torch: "modified by an inplace operation"
        assert backend.name == "torch", exc
    else:
        np.testing.assert_array_equal(host(backend, g), [158.0, 200.0])


def test_a_large_constant_is_read_only_until_the_backward_pass() -> None:
    """Copying a large constant would cost as much as the step: it is read-only instead,
    so writing into it is NumPy's error, not a stale gradient, and writeable after."""
    from vecx.backends._autodiff import COPY_ELEMENTS

    be = vecx.backend("numpy")
    big = np.ones((COPY_ELEMENTS + 1,), np.float32)

    def loss(w: Any) -> Any:
        out = (big * w).sum()
        big[0] = 5.0
        return out

    with pytest.raises(ValueError, match="read-only"):
        be.grad(loss)(np.ones(COPY_ELEMENTS + 1, np.float32))
    big[0] = 2.0  # writeable again once the call is over
    g = be.grad(lambda w: (big * w).sum())(np.ones(COPY_ELEMENTS + 1, np.float32))
    assert g[0] == 2.0 and big.flags.writeable


def test_casting_a_tracer_to_integers_is_a_constant(backend: Any) -> None:
    x = backend.asarray(np.array([1.7, 2.2], np.float32))
    floor = lambda x: backend.astype(backend.astype(x, "int32"), "float32")  # noqa: E731
    g = backend.grad(lambda x: backend.sum(floor(x) * x))(x)
    np.testing.assert_array_equal(host(backend, g), [1.0, 2.0])
    if backend.name == "numpy":
        g2 = backend.grad(lambda x: (x.astype(np.int32) * x).sum())(x)
        np.testing.assert_array_equal(host(backend, g2), [1.0, 2.0])


def test_gradients_are_arrays_of_their_own(backend: Any) -> None:
    """The two gradients of x + y were one tensor on torch (and x.sum()'s a stride-0
    view); a repeated argnum returned the same array twice."""
    x = backend.asarray(np.array([1.0, 2.0, 3.0], np.float32))
    y = backend.asarray(np.array([4.0, 5.0, 6.0], np.float32))
    gx, gy = backend.grad(lambda x, y: backend.sum(x + y), (0, 1))(x, y)
    g1, g2 = backend.grad(lambda x: backend.sum(x * x), (0, 0))(x)
    if backend.capabilities.immutable_arrays:
        return
    gx += 1.0  # in place: must not change gy, and must be allowed
    g1 *= 0.0
    np.testing.assert_array_equal(host(backend, gy), [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(host(backend, g2), [2.0, 4.0, 6.0])


def test_an_integer_output_is_an_error_as_in_jax(backend: Any) -> None:
    x = backend.ones((2,))
    with pytest.raises(TypeError, match="floating-point"):
        backend.grad(lambda x: backend.sum(backend.astype(x, "int32")))(x)


def test_printing_a_traced_value_works_everywhere(backend: Any, capsys: Any) -> None:
    def f(x: Any) -> Any:
        loss = backend.sum(x * x)
        print("loss is", loss, f"{x}")
        return loss

    g = backend.grad(f)(backend.ones((2,)))
    np.testing.assert_array_equal(host(backend, g), [2.0, 2.0])
    assert "loss is" in capsys.readouterr().out


def test_a_keyed_jit_inside_a_plain_jit_is_an_error_not_a_leaked_key() -> None:
    pytest.importorskip("jax")
    be = vecx.backend("jax")
    noisy = be.jit(lambda x: x + be.normal(0.0, 1.0, (3,)), rng=True)
    outer = be.jit(lambda x: noisy(x) * 2)
    with pytest.raises(vecx.TracedRandomness, match="rng=True"):
        outer(be.ones((3,)))
    assert np.isfinite(host(be, be.normal(0.0, 1.0, (2,)))).all()  # the key is concrete
    keyed_outer = be.jit(lambda x: noisy(x) * 2, rng=True)
    a, b = host(be, keyed_outer(be.ones((3,)))), host(be, keyed_outer(be.ones((3,))))
    assert not np.array_equal(a, b)


def test_gradient_dicts_keep_the_arguments_key_order(backend: Any) -> None:
    params = {"w": backend.ones((2,)), "b": backend.zeros((1,))}
    g = backend.grad(lambda p: backend.sum(p["w"] * 2.0) + backend.sum(p["b"]))(params)
    assert list(g) == ["w", "b"]
    np.testing.assert_array_equal(host(backend, g["w"]), [2.0, 2.0])


def test_numpy_scalar_arguments_keep_their_dtype(backend: Any) -> None:
    f = backend.grad(lambda x: x * x)
    g = f(np.float32(3.0))
    assert str(g.dtype).removeprefix("torch.") == "float32" and float(host(backend, g)) == 6.0
    if "float64" in backend.capabilities.dtypes:
        assert str(f(np.float64(3.0)).dtype).removeprefix("torch.") == "float64"
    else:
        with pytest.raises(vecx.UnsupportedDtype):
            f(np.float64(3.0))
