"""The primitives of vecx's NumPy/CuPy autodiff and their vector-Jacobian products.

One registration per op (HIPS autograd's ``defvjp``): ``@primitive(name)`` gives the
forward function ``fn(xp, *args)``, ``defvjp(prim, vjp_arg0, vjp_arg1, ...)`` one VJP per
argument, ``vjp(xp, g, ans, *args)``, where ``g`` is the gradient of the output ``ans``
(``None`` for an argument that is not differentiated: an index, an axis). Contributions
are un-broadcast to their argument's shape by the tape, so a VJP returns the gradient at
the output's shape. ``xp`` is ``numpy`` or ``cupy``; nothing here imports either.

Edge cases follow PyTorch and JAX, so every backend gives the same gradient: ``x ** 0``
has gradient 0 (also at ``x = 0``), ``abs`` has 0 at 0, ties of ``maximum``/``minimum``
and of the ``max``/``min`` reductions share the gradient evenly, ``clip`` passes it on
the closed interval, and ``sigmoid``, ``tanh`` and ``logsumexp`` stay finite for large
``|x|`` because they are computed from their outputs (``logsumexp`` in float16 from the
shifted ``exp(x - max)``), never from ``exp(|x|)``.
"""

from __future__ import annotations

import math
import operator
from typing import Any

from vecx.backends._autodiff import (
    defvjp,
    identity,
    install_operators,
    is_half,
    primitive,
    wide_sum,
)
from vecx.backends._base import kept_shape

SCALARS = (int, float)

# --- arithmetic ------------------------------------------------------------------------


@primitive("add", operator.add, reads=False)
def add(xp: Any, a: Any, b: Any) -> Any:
    return a + b


defvjp(add, identity, identity)


@primitive("subtract", operator.sub, reads=False)
def subtract(xp: Any, a: Any, b: Any) -> Any:
    return a - b


defvjp(subtract, identity, lambda xp, g, ans, a, b: -g)


@primitive("multiply", operator.mul)
def multiply(xp: Any, a: Any, b: Any) -> Any:
    return a * b


defvjp(multiply, lambda xp, g, ans, a, b: g * b, lambda xp, g, ans, a, b: g * a)


@primitive("divide", operator.truediv)
def divide(xp: Any, a: Any, b: Any) -> Any:
    return a / b


defvjp(divide, lambda xp, g, ans, a, b: g / b, lambda xp, g, ans, a, b: -g * ans / b)


@primitive("negative", operator.neg, reads=False)
def negative(xp: Any, x: Any) -> Any:
    return -x


defvjp(negative, lambda xp, g, ans, x: -g)


@primitive("positive", reads=False)
def positive(xp: Any, x: Any) -> Any:
    return xp.positive(x)  # a copy, as NumPy's unary +


defvjp(positive, identity)


@primitive("power", operator.pow)
def power(xp: Any, a: Any, p: Any) -> Any:
    return a**p


def _power_vjp_base(xp: Any, g: Any, ans: Any, a: Any, p: Any) -> Any:
    if type(p) in SCALARS:
        if p == 0:  # d/da a**0 = 0, also at a = 0 (not 0 * inf)
            return xp.zeros_like(g)
        if p == 1:
            return g
        if p == 2:
            return g * (2 * a)
        return g * (p * a ** (p - 1))
    return g * (p * a ** (xp.where(p == 0, 1, p) - 1))  # p == 0 gives 0 * a**0


def _power_vjp_exponent(xp: Any, g: Any, ans: Any, a: Any, p: Any) -> Any:
    # d/dp a**p = a**p log a; 0 at a = 0 (as in JAX and PyTorch), not 0 * -inf
    if type(a) in SCALARS:
        return g * ans * (math.log(a) if a > 0 else (0.0 if a == 0 else math.nan))
    return g * ans * xp.log(xp.where(a == 0, 1, a))


defvjp(power, _power_vjp_base, _power_vjp_exponent)


@primitive("matmul", operator.matmul)
def matmul(xp: Any, a: Any, b: Any) -> Any:
    return a @ b


def _matmul_vjp_a(xp: Any, g: Any, ans: Any, a: Any, b: Any) -> Any:
    if b.ndim == 1:
        return g * b if a.ndim == 1 else g[..., None] * b
    if a.ndim == 1:
        return (b @ g[..., None])[..., 0]
    return g @ (b.T if b.ndim == 2 else b.swapaxes(-1, -2))


def _matmul_vjp_b(xp: Any, g: Any, ans: Any, a: Any, b: Any) -> Any:
    if a.ndim == 1:
        return g * a if b.ndim == 1 else a[:, None] * g[..., None, :]
    if b.ndim == 1:
        return (a.swapaxes(-1, -2) @ g[..., None])[..., 0]
    return (a.T if a.ndim == 2 else a.swapaxes(-1, -2)) @ g


defvjp(matmul, _matmul_vjp_a, _matmul_vjp_b)

# --- shape and indexing ------------------------------------------------------------------


@primitive("getitem")
def getitem(xp: Any, x: Any, idx: Any) -> Any:
    return x[idx]


def _getitem_vjp(xp: Any, g: Any, ans: Any, x: Any, idx: Any) -> Any:
    out = xp.zeros_like(x)
    add_at = getattr(xp.add, "at", None)  # repeated indices are summed
    if add_at is not None:
        add_at(out, idx, g)
    else:  # older CuPy
        import cupyx

        cupyx.scatter_add(out, idx, g)
    return out


defvjp(getitem, _getitem_vjp, None)


@primitive("reshape")
def reshape(xp: Any, x: Any, shape: tuple[int, ...]) -> Any:
    return x.reshape(shape)


defvjp(reshape, lambda xp, g, ans, x, shape: g.reshape(x.shape), None)


@primitive("transpose")
def transpose(xp: Any, x: Any) -> Any:
    return x.T


defvjp(transpose, lambda xp, g, ans, x: g.T)

# --- elementwise ---------------------------------------------------------------------------


@primitive("exp")
def exp(xp: Any, x: Any) -> Any:
    return xp.exp(x)


defvjp(exp, lambda xp, g, ans, x: g * ans)


@primitive("log")
def log(xp: Any, x: Any) -> Any:
    return xp.log(x)


defvjp(log, lambda xp, g, ans, x: g / x)


@primitive("tanh")
def tanh(xp: Any, x: Any) -> Any:
    return xp.tanh(x)


defvjp(tanh, lambda xp, g, ans, x: g * (1 - ans * ans))


@primitive("sigmoid")
def sigmoid(xp: Any, x: Any) -> Any:
    e = xp.exp(-xp.abs(x))  # <= 1: never overflows
    r = 1 / (1 + e)
    return xp.where(x >= 0, r, e * r)


defvjp(sigmoid, lambda xp, g, ans, x: g * (ans * (1 - ans)))


@primitive("sqrt")
def sqrt(xp: Any, x: Any) -> Any:
    return xp.sqrt(x)


defvjp(sqrt, lambda xp, g, ans, x: 0.5 * g / ans)


@primitive("abs")
def absolute(xp: Any, x: Any) -> Any:
    return xp.abs(x)


defvjp(absolute, lambda xp, g, ans, x: g * xp.sign(x))


@primitive("maximum")
def maximum(xp: Any, a: Any, b: Any) -> Any:
    return xp.maximum(a, b)


@primitive("minimum")
def minimum(xp: Any, a: Any, b: Any) -> Any:
    return xp.minimum(a, b)


def _chosen(xp: Any, g: Any, wins: Any, ties: Any) -> Any:
    """``g`` where ``wins``, half of it where ``ties``, else 0 (in ``g``'s dtype)."""
    return xp.where(wins, g, xp.where(ties, 0.5 * g, 0))


defvjp(
    maximum,
    lambda xp, g, ans, a, b: _chosen(xp, g, a > b, a == b),
    lambda xp, g, ans, a, b: _chosen(xp, g, b > a, a == b),
)
defvjp(
    minimum,
    lambda xp, g, ans, a, b: _chosen(xp, g, a < b, a == b),
    lambda xp, g, ans, a, b: _chosen(xp, g, b < a, a == b),
)


@primitive("where")
def where(xp: Any, cond: Any, a: Any, b: Any) -> Any:
    return xp.where(cond, a, b)


defvjp(
    where,
    None,
    lambda xp, g, ans, cond, a, b: xp.where(cond, g, 0),
    lambda xp, g, ans, cond, a, b: xp.where(cond, 0, g),
)


@primitive("clip")
def clip(xp: Any, x: Any, lo: Any, hi: Any) -> Any:
    return xp.clip(x, lo, hi)


def _clip_vjp_x(xp: Any, g: Any, ans: Any, x: Any, lo: Any, hi: Any) -> Any:
    if lo is None:
        inside = x <= hi
    elif hi is None:
        inside = x >= lo
    else:
        inside = (x >= lo) & (x <= hi)
    return xp.where(inside, g, 0)


defvjp(
    clip,
    _clip_vjp_x,
    lambda xp, g, ans, x, lo, hi: xp.where(x < lo, g, 0),
    lambda xp, g, ans, x, lo, hi: xp.where(x > hi, g, 0),
)


@primitive("astype")
def astype(xp: Any, x: Any, dtype: Any) -> Any:
    return x.astype(dtype)


defvjp(astype, lambda xp, g, ans, x, dtype: g.astype(x.dtype), None)

# --- reductions ----------------------------------------------------------------------------
# ``axis`` is None or a tuple of non-negative ints (vecx.backends._base.normalize_axis).


def _spread(xp: Any, g: Any, x: Any, axis: Any, keepdims: bool, scale: Any = None) -> Any:
    """``g`` broadcast back over the reduced axes of ``x``, optionally divided by ``scale``.

    Fills a fresh array instead of ``xp.broadcast_to(xp.expand_dims(g, axis))``: on the
    tiny arrays of a minibatch step that is 0.5 us instead of 5 us, and the gradient
    comes out writeable.
    """
    if axis is not None and not keepdims:
        g = g.reshape(kept_shape(x.shape, axis))
    out = xp.empty(x.shape, x.dtype)
    if scale is not None:  # a float16 count past 65504 would be inf: divide in float32
        g = g / (xp.float32(scale) if is_half(x.dtype) else scale)
    out[...] = g
    return out


@primitive("sum")
def sum_(xp: Any, x: Any, axis: Any, keepdims: bool) -> Any:
    return wide_sum(x, axis, keepdims)  # float16: accumulated in float32


defvjp(sum_, lambda xp, g, ans, x, axis, keepdims: _spread(xp, g, x, axis, keepdims), None, None)


@primitive("mean")
def mean(xp: Any, x: Any, axis: Any, keepdims: bool) -> Any:
    if x.dtype.kind == "f" and x.dtype.itemsize >= 4:
        # What NumPy's mean computes (a sum divided in the same dtype), without the
        # ~3 us of Python around it in numpy/_core/_methods.py: a third of the step.
        total = x.sum(axis=axis, keepdims=keepdims)
        return total / (x.size // (total.size or 1))
    return x.mean(axis=axis, keepdims=keepdims)  # float16 sums in float32 inside mean


def _mean_vjp(xp: Any, g: Any, ans: Any, x: Any, axis: Any, keepdims: bool) -> Any:
    count = x.size // (ans.size or 1)
    return _spread(xp, g, x, axis, keepdims, count if count != 1 else None)


defvjp(mean, _mean_vjp, None, None)


@primitive("max")
def max_(xp: Any, x: Any, axis: Any, keepdims: bool) -> Any:
    return x.max(axis=axis, keepdims=keepdims)


@primitive("min")
def min_(xp: Any, x: Any, axis: Any, keepdims: bool) -> Any:
    return x.min(axis=axis, keepdims=keepdims)


def _chooser_vjp(xp: Any, g: Any, ans: Any, x: Any, axis: Any, keepdims: bool) -> Any:
    """The gradient of a max or min: shared evenly by the elements equal to it."""
    kept = kept_shape(x.shape, axis)
    ans = xp.reshape(ans, kept)
    g = xp.reshape(g, kept)
    mask = (x == ans).astype(x.dtype)
    if is_half(x.dtype):  # ties counted in float32: float16 stalls at 2048, ends at 65504
        return (g * mask / mask.sum(axis=axis, keepdims=True, dtype="float32")).astype(x.dtype)
    return g * mask / mask.sum(axis=axis, keepdims=True)


defvjp(max_, _chooser_vjp, None, None)
defvjp(min_, _chooser_vjp, None, None)


def _shifted_exp(xp: Any, x: Any, axis: Any) -> Any:
    """``exp(x - max)`` along ``axis``: at most 1, so it never overflows."""
    m = x.max(axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0)  # all -inf (or inf) along the axis: no shift
    return xp.exp(x - m), m


@primitive("logsumexp")
def logsumexp(xp: Any, x: Any, axis: Any, keepdims: bool) -> Any:
    e, m = _shifted_exp(xp, x, axis)
    out = xp.log(wide_sum(e, axis, True)) + m
    if keepdims:
        return out
    return out.reshape(()) if axis is None else out.squeeze(axis=axis)


def _logsumexp_vjp(xp: Any, g: Any, ans: Any, x: Any, axis: Any, keepdims: bool) -> Any:
    """``g`` times the softmax: ``exp(x - ans)`` (torch's formula) in float32 and float64;
    in float16 ``exp(x - max) / sum``, as torch's backend and JAX compute it there, since
    ``ans`` rounded to float16 is off by ``|ans|`` units of roundoff, and so would be
    every probability (the forward's exponentials computed again: the tape keeps only
    ``ans``)."""
    kept = kept_shape(x.shape, axis)
    if not is_half(x.dtype):
        return xp.reshape(g, kept) * xp.exp(x - xp.reshape(ans, kept))
    e, _ = _shifted_exp(xp, x, axis)
    return xp.reshape(g, kept) * (e / wide_sum(e, axis, True))


defvjp(logsumexp, _logsumexp_vjp, None, None)

install_operators()
