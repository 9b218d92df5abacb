"""Reverse-mode differentiation for NumPy and CuPy, which have none of their own.

``value_and_grad(f, argnums, xp)`` wraps the differentiated arguments in ``Tracer``
objects, runs ``f`` once while every operation on a tracer appends a node to a tape,
then walks the tape backwards. ``xp`` is the array module (``numpy`` or ``cupy``), so one
body of code serves both, as in array-api-compat.

Covered: ``+ - * /`` with broadcasting (gradients are summed back over broadcast axes),
``**`` by a constant, unary minus, ``@``, ``.sum()``/``.mean()`` with ``axis``,
``.reshape``, ``.T``, indexing along axis 0, and ``exp``. Comparisons (``== < ...``)
give the plain comparison of the values, a constant mask (not differentiable, as in
JAX). Gradients have the dtype of their argument. Anything else on a tracer raises
``TypeError`` instead of silently returning a wrong gradient: an unsupported operation,
converting a tracer to an array (``np.asarray``), an integer argument, and nested
differentiation (``grad(grad(f))``).

Kept lean on purpose: the d2l linear-regression step is ~6 operations on tiny arrays, so
Python overhead per node, not arithmetic, decides the speed (bench/overhead.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vecx.backends._base import check_argnums, flatten, normalize_argnums

NESTED = (
    "nested differentiation is not supported by vecx's NumPy/CuPy autodiff (a traced array "
    "reached another grad/value_and_grad); use the jax or torch backend for higher derivatives"
)


class Tape:
    __slots__ = ("xp", "nodes")

    def __init__(self, xp: Any) -> None:
        self.xp = xp
        self.nodes: list[Tracer] = []


class Tracer:
    """An array being differentiated: its value, the tape, and how to pull gradients back.

    ``parents`` holds ``(parent, vjp)`` pairs; ``vjp`` maps this node's gradient to the
    parent's contribution (``None`` means identity). Contributions are summed back to the
    parent's shape, which is all that broadcasting needs.
    """

    __slots__ = ("value", "tape", "parents", "g")
    __array_ufunc__ = None  # make NumPy/CuPy operators defer to our reflected methods
    __array_priority__ = 1000

    def __init__(self, value: Any, tape: Tape, parents: tuple = ()) -> None:
        self.value = value
        self.tape = tape
        self.parents = parents
        self.g = None
        if parents:
            tape.nodes.append(self)

    # array-like attributes
    @property
    def shape(self) -> tuple[int, ...]:
        return self.value.shape

    @property
    def ndim(self) -> int:
        return self.value.ndim

    @property
    def dtype(self) -> Any:
        return self.value.dtype

    @property
    def size(self) -> int:
        return self.value.size

    def __len__(self) -> int:
        return len(self.value)

    def __repr__(self) -> str:
        return f"Tracer({self.value!r})"

    def __bool__(self) -> bool:
        raise TypeError("a traced array has no truth value inside a differentiated function")

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        # np.asarray(tracer) would build an object array, and silently cut the gradient
        raise TypeError(
            "a traced array cannot be converted to an array inside a function differentiated "
            "by vecx's NumPy/CuPy autodiff: use the array operators and the backend's "
            "methods (be.exp, be.matmul, be.index)"
        )

    # comparisons: the plain comparison of the values, a constant (as in JAX)
    def __eq__(self, other: Any) -> Any:  # type: ignore[override]
        return self.value == (other.value if type(other) is Tracer else other)

    def __ne__(self, other: Any) -> Any:  # type: ignore[override]
        return self.value != (other.value if type(other) is Tracer else other)

    def __lt__(self, other: Any) -> Any:
        return self.value < (other.value if type(other) is Tracer else other)

    def __le__(self, other: Any) -> Any:
        return self.value <= (other.value if type(other) is Tracer else other)

    def __gt__(self, other: Any) -> Any:
        return self.value > (other.value if type(other) is Tracer else other)

    def __ge__(self, other: Any) -> Any:
        return self.value >= (other.value if type(other) is Tracer else other)

    __hash__ = None  # type: ignore[assignment]  # like arrays, once == is elementwise

    # arithmetic
    def __add__(self, other: Any) -> Tracer:
        if type(other) is Tracer:
            if other.tape is not self.tape:
                raise TypeError(NESTED)
            return Tracer(self.value + other.value, self.tape, ((self, None), (other, None)))
        return Tracer(self.value + other, self.tape, ((self, None),))

    __radd__ = __add__

    def __sub__(self, other: Any) -> Tracer:
        if type(other) is Tracer:
            if other.tape is not self.tape:
                raise TypeError(NESTED)
            return Tracer(self.value - other.value, self.tape, ((self, None), (other, _neg)))
        return Tracer(self.value - other, self.tape, ((self, None),))

    def __rsub__(self, other: Any) -> Tracer:
        return Tracer(other - self.value, self.tape, ((self, _neg),))

    def __neg__(self) -> Tracer:
        return Tracer(-self.value, self.tape, ((self, _neg),))

    def __mul__(self, other: Any) -> Tracer:
        a = self.value
        if type(other) is Tracer:
            if other.tape is not self.tape:
                raise TypeError(NESTED)
            b = other.value
            return Tracer(
                a * b, self.tape, ((self, lambda g: g * b), (other, lambda g: g * a))
            )
        return Tracer(a * other, self.tape, ((self, lambda g: g * other),))

    __rmul__ = __mul__

    def __truediv__(self, other: Any) -> Tracer:
        a = self.value
        if type(other) is Tracer:
            if other.tape is not self.tape:
                raise TypeError(NESTED)
            b = other.value
            return Tracer(
                a / b,
                self.tape,
                ((self, lambda g: g / b), (other, lambda g: -g * a / (b * b))),
            )
        return Tracer(a / other, self.tape, ((self, lambda g: g / other),))

    def __rtruediv__(self, other: Any) -> Tracer:
        b = self.value
        return Tracer(other / b, self.tape, ((self, lambda g: -g * other / (b * b)),))

    def __pow__(self, p: Any) -> Tracer:
        if type(p) is Tracer:
            raise TypeError("vecx's NumPy/CuPy autodiff supports ** by a constant only")
        a = self.value
        if p == 2:
            return Tracer(a * a, self.tape, ((self, lambda g: g * (2 * a)),))
        return Tracer(a**p, self.tape, ((self, lambda g: g * (p * a ** (p - 1))),))

    def __rpow__(self, base: Any) -> Tracer:
        raise TypeError("vecx's NumPy/CuPy autodiff supports ** by a constant only")

    def __matmul__(self, other: Any) -> Tracer:
        return _matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tracer:
        return _matmul(other, self)

    # reductions and shape
    def sum(self, axis: Any = None, keepdims: bool = False) -> Tracer:
        value = self.value
        out = value.sum(axis=axis, keepdims=keepdims)
        kept = _kept_shape(value.shape, axis) if axis is not None and not keepdims else None
        return Tracer(out, self.tape, ((self, _spread(self.tape.xp, value, kept, 1)),))

    def mean(self, axis: Any = None, keepdims: bool = False) -> Tracer:
        value = self.value
        if value.dtype.kind == "f" and value.dtype.itemsize >= 4:
            # What NumPy's mean computes (a sum divided in the same dtype), without the
            # ~3 us of Python around it in numpy/_core/_methods.py: a third of the step.
            out = value.sum(axis=axis, keepdims=keepdims)
            count = value.size // max(getattr(out, "size", 1), 1)
            out = out / count
        else:  # float16 sums in float32 inside mean; integers become float64
            out = value.mean(axis=axis, keepdims=keepdims)
            count = value.size // max(getattr(out, "size", 1), 1)
        kept = _kept_shape(value.shape, axis) if axis is not None and not keepdims else None
        return Tracer(out, self.tape, ((self, _spread(self.tape.xp, value, kept, count)),))

    def reshape(self, *shape: Any) -> Tracer:
        old = self.value.shape
        return Tracer(self.value.reshape(*shape), self.tape, ((self, lambda g: g.reshape(old)),))

    @property
    def T(self) -> Tracer:  # noqa: N802 - the array attribute's name
        return Tracer(self.value.T, self.tape, ((self, lambda g: g.T),))

    def __getitem__(self, idx: Any) -> Tracer:
        value = self.value
        xp = self.tape.xp

        def vjp(g: Any) -> Any:
            out = xp.zeros_like(value)
            _scatter_add(xp, out, idx, g)
            return out

        return Tracer(value[idx], self.tape, ((self, vjp),))

    def exp(self) -> Tracer:
        out = self.tape.xp.exp(self.value)
        return Tracer(out, self.tape, ((self, lambda g: g * out),))


def _kept_shape(shape: tuple[int, ...], axis: Any) -> tuple[int, ...]:
    """The shape a reduction over ``axis`` has with ``keepdims=True``."""
    axes = {a % len(shape) for a in ((axis,) if isinstance(axis, int) else axis)}
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


def _spread(xp: Any, value: Any, kept: tuple[int, ...] | None, count: int) -> Callable:
    """The VJP of a sum (``count`` 1) or mean over some axes of ``value``.

    Fills a fresh array instead of ``xp.broadcast_to(xp.expand_dims(g, axis))``: on the
    tiny arrays of a minibatch step that is 0.5 us instead of 5 us, and the gradient
    comes out writeable.
    """
    shape, dtype = value.shape, value.dtype

    def vjp(g: Any) -> Any:
        if kept is not None:
            g = g.reshape(kept)
        out = xp.empty(shape, dtype)
        out[...] = g if count == 1 else g / count
        return out

    return vjp


def _scatter_add(xp: Any, out: Any, idx: Any, g: Any) -> None:
    """``out[idx] += g`` with repeated indices summed (``np.add.at``; older CuPy lacks it)."""
    add_at = getattr(xp.add, "at", None)
    if add_at is not None:
        add_at(out, idx, g)
    else:
        import cupyx

        cupyx.scatter_add(out, idx, g)


def _neg(g: Any) -> Any:
    return -g


def _matmul(a: Any, b: Any) -> Tracer:
    tape = a.tape if type(a) is Tracer else b.tape
    av = a.value if type(a) is Tracer else a
    bv = b.value if type(b) is Tracer else b
    parents = []
    if type(a) is Tracer:
        parents.append((a, lambda g: _matmul_grad_a(g, av, bv)))
    if type(b) is Tracer:
        if b.tape is not tape:
            raise TypeError(NESTED)
        parents.append((b, lambda g: _matmul_grad_b(g, av, bv)))
    return Tracer(av @ bv, tape, tuple(parents))


def _matmul_grad_a(g: Any, a: Any, b: Any) -> Any:
    if b.ndim == 1:
        return g * b if a.ndim == 1 else g[..., None] * b
    if a.ndim == 1:
        return (b @ g[..., None])[..., 0]
    return g @ (b.T if b.ndim == 2 else b.swapaxes(-1, -2))


def _matmul_grad_b(g: Any, a: Any, b: Any) -> Any:
    if a.ndim == 1:
        return g * a if b.ndim == 1 else a[:, None] * g[..., None, :]
    if b.ndim == 1:
        return (a.swapaxes(-1, -2) @ g[..., None])[..., 0]
    return (a.T if a.ndim == 2 else a.swapaxes(-1, -2)) @ g


def _unbroadcast(g: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``g`` over the axes that broadcasting added or stretched to reach its shape."""
    extra = g.ndim - len(shape)
    if extra > 0:
        g = g.sum(axis=0 if extra == 1 else tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if stretched:
        g = g.sum(axis=stretched, keepdims=True)
    return g


def backward(out: Tracer) -> None:
    """Fill ``.g`` of every tracer that ``out`` depends on."""
    value = out.value
    # A scalar one of the output's dtype is cheap and exact; a size-1 output of shape
    # (1, 1) (``w.T @ w``) needs ones of its shape, or the VJPs see too few dimensions.
    out.g = value.dtype.type(1) if value.ndim == 0 else out.tape.xp.ones_like(value)
    for node in reversed(out.tape.nodes):
        g = node.g
        if g is None:
            continue
        for parent, vjp in node.parents:
            c = g if vjp is None else vjp(g)
            if c.shape != parent.value.shape:
                c = _unbroadcast(c, parent.value.shape)
            parent.g = c if parent.g is None else parent.g + c


def value_and_grad(
    f: Callable[..., Any], argnums: int | tuple[int, ...], xp: Any, asarray: Callable[[Any], Any]
) -> Callable[..., tuple[Any, Any]]:
    """JAX-style ``value_and_grad`` over arrays of module ``xp``.

    ``asarray`` turns an argument leaf that is not yet an ``xp.ndarray`` (a Python float,
    a host array for CuPy) into one; the backend decides the dtype of Python scalars.
    """
    nums, single = normalize_argnums(argnums)
    ndarray = xp.ndarray

    def value_and_grad_f(*args: Any) -> tuple[Any, Any]:
        check_argnums(nums, len(args))
        tape = Tape(xp)
        args = list(args)
        traced = []
        for i in nums:
            leaves, rebuild = flatten(args[i])
            tracers = []
            for leaf in leaves:
                if type(leaf) is not ndarray:
                    leaf = _leaf_array(leaf, asarray)
                if leaf.dtype.kind not in "fc":
                    raise TypeError(
                        f"grad needs floating-point arguments, got {leaf.dtype} (argument {i})"
                    )
                tracers.append(Tracer(leaf, tape))
            args[i] = rebuild(tracers)
            traced.append((tracers, rebuild))
        try:
            out = f(*args)
            traced_out = type(out) is Tracer  # else f does not depend on the arguments
            if traced_out and out.tape is not tape:  # f returned an outer grad's tracer
                raise TypeError(NESTED)
            value = out.value if traced_out else out
            if getattr(value, "size", 1) != 1:
                raise ValueError(
                    f"value_and_grad needs f to return a scalar, got shape {tuple(value.shape)}"
                )
            if traced_out:
                backward(out)
        finally:
            # The tape and its nodes point at each other: break the cycle so they are freed
            # now, not at the next garbage collection (~15% of a linreg step).
            tape.nodes.clear()
        grads = tuple(
            rebuild([_finish(t, xp) for t in tracers]) for tracers, rebuild in traced
        )
        return value, grads[0] if single else grads

    return value_and_grad_f


def _leaf_array(leaf: Any, asarray: Callable[[Any], Any]) -> Any:
    if type(leaf) is Tracer:
        raise TypeError(NESTED)
    return asarray(leaf)


def _finish(t: Tracer, xp: Any) -> Any:
    g = t.g
    dtype = t.value.dtype
    if g is None:
        return xp.zeros_like(t.value)
    if type(g) is not xp.ndarray:  # a NumPy scalar, for a 0-d argument
        return xp.asarray(g, dtype=dtype)
    if g.dtype is not dtype and g.dtype != dtype:
        # a float32 argument times a float64 constant: the gradient keeps the argument's
        # dtype (as in JAX and PyTorch); astype hands back a fresh array
        return g.astype(dtype)
    if 0 in g.strides or not getattr(g.flags, "writeable", True):
        return g.copy()  # a broadcast view (read-only in NumPy): hand back an array of its own
    return g
