"""Reverse-mode differentiation for NumPy and CuPy, which have none of their own.

``value_and_grad(f, argnums, xp, ...)`` wraps the differentiated arguments in ``Tracer``
objects, runs ``f`` once while every primitive applied to a tracer appends a node to a
tape, then walks the tape backwards. ``xp`` is the array module (``numpy`` or ``cupy``),
so one body of code serves both, as in array-api-compat.

What can be differentiated is one table, as in HIPS autograd: a :class:`Primitive` is a
forward function of ``xp`` and, per argument, a vector-Jacobian product registered with
:func:`defvjp` (``vecx/backends/_vjps.py`` holds them all). The tracer's operators and
methods and the NumPy/CuPy backends' math methods are looked up in that table, so an op
is added by one registration. Broadcasting is undone in one place (:func:`unbroadcast`).

Anything outside the table raises ``TypeError`` instead of giving a silently wrong
gradient: a NumPy function applied to a tracer (the message names the backend method to
use), converting a tracer to an array or a Python number (``np.asarray``, ``float``),
an integer argument or output, and nested differentiation (``grad(grad(f))``).
Comparisons give the plain comparison of the values, a constant mask (not
differentiable, as in JAX). Gradients have the dtype of their argument.

A VJP reads the constant arrays its primitive was applied to (``X`` in ``X @ w``) at the
backward pass, so the tape must not see them change (a reused buffer would give a stale
gradient): a small one (up to ``COPY_ELEMENTS``) is copied onto the tape, a large one,
which copying would cost as much as the step, is made read-only until the backward pass
is done, so that writing into it is NumPy's ``ValueError: assignment destination is
read-only``, as PyTorch raises on an in-place change of a tensor autograd saved. (CuPy
arrays cannot be made read-only: small ones are copied, large ones are kept as they are.)

Kept lean on purpose: the d2l linear-regression step is ~6 operations on tiny arrays, so
Python overhead per node, not arithmetic, decides the speed (bench/overhead.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from vecx.backends._base import (
    check_argnums,
    loss_output,
    normalize_argnums,
    normalize_axis,
)
from vecx.pytree import flatten, tree_map

NESTED = (
    "nested differentiation is not supported by vecx's NumPy/CuPy autodiff (a traced array "
    "reached another grad/value_and_grad); use the jax or torch backend for higher derivatives"
)
CONSTANT = (
    "{what} of a traced array inside a function differentiated by vecx's NumPy/CuPy "
    "autodiff would make it a constant and silently drop its gradient; keep it an array "
    "(the operators and the backend's methods: be.exp, be.sum, ...), or return it as aux "
    "with has_aux=True"
)


#: Per thread: ``context``, the `_replay.Replayed` step running (None outside one), and
#: ``tracing``, set while the replay compiler traces (a random draw then is an error).
REPLAY = threading.local()


class Primitive:
    """One differentiable operation: ``fn(xp, *args)`` and its VJPs.

    ``vjps[i](xp, g, ans, *args)`` maps the output's gradient ``g`` to argument ``i``'s
    contribution (before un-broadcasting); ``None`` marks an argument that is never
    differentiated (a condition, an index, a shape, an axis). Every argument is
    positional: keyword unpacking would cost a microsecond per node.
    """

    __slots__ = ("name", "fn", "vjps", "op", "reads")

    def __init__(
        self, name: str, fn: Callable[..., Any], op: Callable[..., Any] | None = None,
        reads: bool = True,
    ) -> None:  # fmt: skip
        self.name, self.fn = name, fn
        #: ``fn`` without ``xp`` (an operator such as ``operator.add``): the fast path
        self.op = op
        #: whether the VJPs read constant operands (``+``'s do not): they are then locked
        self.reads = reads
        self.vjps: tuple[Callable[..., Any] | None, ...] = ()

    def __call__(self, xp: Any, *args: Any) -> Any:
        """Apply to arrays of ``xp``: recorded on the tape when an argument is a tracer."""
        for a in args:
            if type(a) is Tracer:
                return apply(self, args)
        return self.fn(xp, *args)

    def __repr__(self) -> str:
        return f"<primitive {self.name}>"


#: Every primitive by name: the table the tracer and the NumPy/CuPy backends look in.
PRIMITIVES: dict[str, Primitive] = {}


def primitive(
    name: str, op: Callable[..., Any] | None = None, reads: bool = True
) -> Callable[[Callable[..., Any]], Primitive]:
    """Register ``fn(xp, *args)`` as the forward function of primitive ``name``;
    ``op`` is the same function without ``xp``, where there is one (``operator.add``);
    ``reads=False`` says that no VJP reads a constant operand's value."""

    def register(fn: Callable[..., Any]) -> Primitive:
        prim = PRIMITIVES[name] = Primitive(name, fn, op, reads)
        return prim

    return register


def defvjp(prim: Primitive, *vjps: Callable[..., Any] | None) -> None:
    """The VJP of each argument of ``prim``, in order (``None``: not differentiable).

    `identity` marks a VJP that passes the gradient on unchanged (``+``), which the
    backward pass then does without a call.
    """
    prim.vjps = vjps


def identity(xp: Any, g: Any, ans: Any, *args: Any) -> Any:
    """The VJP that passes the gradient on as it is."""
    return g


class Tape:
    __slots__ = ("xp", "ndarray", "nodes", "locked", "recording", "seen")

    def __init__(self, xp: Any, recording: bool = False) -> None:
        self.xp = xp
        self.ndarray = xp.ndarray
        self.nodes: list[Tracer] = []
        self.locked: list[Any] = []  # constant arrays made read-only until the backward
        #: tracing for the replay compiler (``_replay``): every array computed from a
        #: tracer, a comparison's mask too, becomes a node, so none is baked in as a constant
        self.recording = recording
        self.seen: dict[int, Any] = {}

    def keep(self, value: Any) -> Any:
        """A constant operand as the tape may keep it (module docstring): a small array is
        copied (0.5 us), a large one made read-only until the backward pass is done."""
        if type(value) is not self.ndarray:
            return value  # scalars, and what cannot be written in place
        if value.size <= COPY_ELEMENTS:
            return value.copy()
        return self.lock(value)

    def lock(self, value: Any) -> Any:
        if getattr(value.flags, "writeable", False):  # CuPy arrays have no such flag
            value.setflags(write=False)
            self.locked.append(value)
        return value

    def distinct(self, value: Any) -> Any:
        """``value`` as an array object no other traced value is (recording only): NumPy
        hands out its scalars as shared singletons (``np.True_``), and an operation may
        return its argument itself."""
        if type(value) is not self.ndarray:
            value = self.xp.asarray(value)
        elif id(value) in self.seen:
            value = value.view()
        self.seen[id(value)] = value  # kept alive: an id is never reused while tracing
        return value

    def release(self) -> None:
        """Give the locked constants back writeable, and drop the nodes."""
        for value in self.locked:
            value.setflags(write=True)
        self.locked.clear()
        self.nodes.clear()
        self.seen.clear()


#: Constant operands up to this many elements are copied onto the tape; larger ones are
#: made read-only instead (copying 4096 floats costs about as much as one small step).
COPY_ELEMENTS = 4096


class Tracer:
    """An array being differentiated: its value, and the primitive that made it.

    ``parents`` holds ``(tracer, vjp)`` for the traced arguments of the primitive that made
    it; ``args`` are what that primitive was applied to (values, not tracers), which is
    all its VJPs need.
    """

    __slots__ = ("value", "tape", "args", "parents", "g", "prim")
    __array_priority__ = 1000

    def __init__(
        self, value: Any, tape: Tape, parents: tuple, args: tuple, prim: Primitive | None = None
    ) -> None:  # fmt: skip
        self.value = value
        self.tape = tape
        self.parents = parents
        self.args = args
        self.g = None
        self.prim = prim  # what made it (None for an argument): the replay compiler reads it
        if tape.recording:  # the replay compiler tells values apart by identity
            self.value = tape.distinct(value)
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

    # conversions that would cut the gradient: errors, never constants
    def __bool__(self) -> bool:
        raise TypeError(CONSTANT.format(what="bool()"))

    def __float__(self) -> float:
        raise TypeError(CONSTANT.format(what="float()"))

    def __int__(self) -> int:
        raise TypeError(CONSTANT.format(what="int()"))

    def __complex__(self) -> complex:
        raise TypeError(CONSTANT.format(what="complex()"))

    def __index__(self) -> int:
        raise TypeError(CONSTANT.format(what="using as an index"))

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        raise TypeError(CONSTANT.format(what="converting to an array (np.asarray, to_numpy)"))

    def tolist(self) -> Any:
        raise TypeError(CONSTANT.format(what="tolist()"))

    def item(self) -> Any:
        raise TypeError(CONSTANT.format(what="item()"))

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        """NumPy's operators with an array on the left (``X @ w``) come here: run them as
        the tracer's own; any other NumPy function is an error naming the vecx method."""
        name = ufunc.__name__
        if len(inputs) == 2 and method == "__call__" and not kwargs:
            a, b = inputs
            if b is self:
                op = _REFLECTED.get(name)
                if op is not None:
                    return op(self, a)
            elif a is self:
                op = _FORWARD.get(name)
                if op is not None:
                    return op(self, b)
        raise TypeError(_instead(name))

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        name = getattr(func, "__name__", str(func))
        if name in ("shape", "ndim", "size"):
            return getattr(self.value, name)
        module = str(getattr(func, "__module__", "numpy")).replace("._core", "")
        public = module if module.startswith("numpy.") and "._" not in module else "numpy"
        raise TypeError(_instead(name, public))

    # comparisons: the plain comparison of the values, a constant (as in JAX); a node
    # while the replay compiler traces, so that the mask is computed again at each replay
    def __eq__(self, other: Any) -> Any:  # type: ignore[override]
        return derived(_EQ, self, other)

    def __ne__(self, other: Any) -> Any:  # type: ignore[override]
        return derived(_NE, self, other)

    def __lt__(self, other: Any) -> Any:
        return derived(_LT, self, other)

    def __le__(self, other: Any) -> Any:
        return derived(_LE, self, other)

    def __gt__(self, other: Any) -> Any:
        return derived(_GT, self, other)

    def __ge__(self, other: Any) -> Any:
        return derived(_GE, self, other)

    __hash__ = None  # type: ignore[assignment]  # like arrays, once == is elementwise

    # arithmetic: ``+ - * / ** @`` are made from the table below the class

    def __neg__(self) -> Tracer:
        return unary(_NEG, self)

    def __pos__(self) -> Tracer:
        return apply(PRIMITIVES["positive"], (self,))

    def __abs__(self) -> Tracer:
        return apply(PRIMITIVES["abs"], (self,))

    def __getitem__(self, idx: Any) -> Tracer:
        return apply(_GETITEM, (self, own_index(idx)))

    # methods shared by the frameworks' arrays
    def sum(self, axis: Any = None, keepdims: bool = False) -> Tracer:
        return _reduce_method("sum", self, axis, keepdims)

    def mean(self, axis: Any = None, keepdims: bool = False) -> Tracer:
        return _reduce_method("mean", self, axis, keepdims)

    def max(self, axis: Any = None, keepdims: bool = False) -> Tracer:
        return _reduce_method("max", self, axis, keepdims)

    def min(self, axis: Any = None, keepdims: bool = False) -> Tracer:
        return _reduce_method("min", self, axis, keepdims)

    def reshape(self, *shape: Any) -> Tracer:
        if len(shape) == 1 and not isinstance(shape[0], int):
            shape = tuple(shape[0])
        return apply(PRIMITIVES["reshape"], (self, shape))

    @property
    def T(self) -> Tracer:  # noqa: N802 - the array attribute's name
        return apply(PRIMITIVES["transpose"], (self,))

    def clip(self, lo: Any = None, hi: Any = None) -> Tracer:
        return PRIMITIVES["clip"](self.tape.xp, self, lo, hi)

    def ravel(self) -> Tracer:
        return self.reshape(-1)

    flatten = ravel

    def squeeze(self, axis: Any = None) -> Tracer:
        shape = self.value.shape
        axes = normalize_axis(axis, len(shape))
        keep = [n for i, n in enumerate(shape) if not (n == 1 and (axes is None or i in axes))]
        return self.reshape(tuple(keep))

    def transpose(self) -> Tracer:
        return self.T

    def dot(self, other: Any) -> Tracer:
        return self @ other

    def argmax(self, axis: Any = None) -> Any:
        return derived(_ARGMAX, self, axis)  # an index: a constant

    def argmin(self, axis: Any = None) -> Any:
        return derived(_ARGMIN, self, axis)

    def __setitem__(self, idx: Any, value: Any) -> None:
        raise TypeError(
            "a traced array cannot be written in place inside a differentiated function "
            "(as in JAX): build a new one, e.g. be.where(mask, new, x)"
        )

    def astype(self, dtype: Any) -> Any:
        dtype = self.tape.xp.dtype(dtype)
        if dtype.kind not in "fc":  # to integers or booleans: a constant (as in JAX)
            return derived(AS_CONSTANT, self, dtype)
        return PRIMITIVES["astype"](self.tape.xp, self, dtype)


def _reduce_method(name: str, x: Tracer, axis: Any, keepdims: bool) -> Tracer:
    value = x.value
    args = (value, normalize_axis(axis, value.ndim), bool(keepdims))
    prim = PRIMITIVES[name]
    return Tracer(prim.fn(x.tape.xp, *args), x.tape, ((x, prim.vjps[0]),), args, prim)


def derived(prim: Primitive, *args: Any) -> Any:
    """``prim`` (never differentiated: a comparison, a cast to integers, an argmax) of the
    values of ``args``: a constant, as in JAX. While the replay compiler traces, a node on
    the tape instead, so the replayed step computes it again rather than reusing the
    first call's mask."""
    for a in args:
        if type(a) is Tracer:
            if a.tape.recording:
                return apply(prim, args)
            return prim.fn(a.tape.xp, *[v.value if type(v) is Tracer else v for v in args])
    raise TypeError(f"{prim.name} needs a traced array")


def _constant_primitive(name: str, fn: Callable[..., Any], arity: int) -> Primitive:
    prim = Primitive(name, fn, reads=False)
    prim.vjps = (None,) * arity
    return prim


_EQ = _constant_primitive("equal", lambda xp, a, b: a == b, 2)
_NE = _constant_primitive("not_equal", lambda xp, a, b: a != b, 2)
_LT = _constant_primitive("less", lambda xp, a, b: a < b, 2)
_LE = _constant_primitive("less_equal", lambda xp, a, b: a <= b, 2)
_GT = _constant_primitive("greater", lambda xp, a, b: a > b, 2)
_GE = _constant_primitive("greater_equal", lambda xp, a, b: a >= b, 2)
_ARGMAX = _constant_primitive("argmax", lambda xp, x, axis: x.argmax(axis=axis), 2)
_ARGMIN = _constant_primitive("argmin", lambda xp, x, axis: x.argmin(axis=axis), 2)
AS_CONSTANT = _constant_primitive("astype_constant", lambda xp, x, dtype: x.astype(dtype), 2)
ISFINITE = _constant_primitive("isfinite", lambda xp, x: xp.isfinite(x), 1)


def own_index(idx: Any) -> Any:
    """A copy of a host index array: the tape keeps it until the backward pass, and the
    caller may change theirs in place in between (the gradient would change with it)."""
    if hasattr(idx, "copy") and hasattr(idx, "dtype"):
        return idx.copy()
    if type(idx) is tuple:
        return tuple(own_index(i) for i in idx)
    if type(idx) is list:
        return [own_index(i) for i in idx]
    return idx


def apply(prim: Primitive, args: tuple) -> Any:
    """Apply ``prim`` to ``args`` (at least one a tracer) and record it on the tape."""
    if len(args) == 2 and None not in prim.vjps:
        return binary(prim, args[0], args[1])
    tape = None
    values = list(args)
    parents = []
    vjps = prim.vjps
    for i, a in enumerate(args):
        if type(a) is Tracer:
            if tape is None:
                tape = a.tape
            elif a.tape is not tape:
                raise TypeError(NESTED)
            values[i] = a.value
            if i < len(vjps) and vjps[i] is not None:
                parents.append((a, vjps[i]))
    if prim.reads:
        for i, a in enumerate(args):
            if type(a) is not Tracer:
                values[i] = tape.keep(a)
    out = Tracer(prim.fn(tape.xp, *values), tape, tuple(parents), tuple(values), prim)
    if not parents and tape.recording:  # computed from tracers, never differentiated
        tape.nodes.append(out)
    return out


def unary(prim: Primitive, x: Tracer) -> Tracer:
    """``apply`` for a one-argument primitive without parameters (the hot path)."""
    value = x.value
    tape = x.tape
    op = prim.op
    out = op(value) if op is not None else prim.fn(tape.xp, value)
    return Tracer(out, tape, ((x, prim.vjps[0]),), (value,), prim)


def binary(prim: Primitive, a: Any, b: Any) -> Tracer:
    """``apply`` for a two-argument primitive without parameters (the operators)."""
    if type(a) is Tracer:
        tape = a.tape
        av = a.value
        if type(b) is Tracer:
            if b.tape is not tape:
                raise TypeError(NESTED)
            bv = b.value
            parents = ((a, prim.vjps[0]), (b, prim.vjps[1]))
        else:
            bv = tape.keep(b) if prim.reads else b
            parents = ((a, prim.vjps[0]),)
    else:
        tape = b.tape
        av = tape.keep(a) if prim.reads else a
        bv = b.value
        parents = ((b, prim.vjps[1]),)
    op = prim.op
    out = op(av, bv) if op is not None else prim.fn(tape.xp, av, bv)
    return Tracer(out, tape, parents, (av, bv), prim)


def is_half(dtype: Any) -> bool:
    """float16 (the only 2-byte float NumPy and CuPy have)."""
    return dtype.kind == "f" and dtype.itemsize == 2


def narrow_sums(x: Any) -> bool:
    """A NumPy float16 array, whose sums NumPy accumulates in float16: one row after
    another along a strided axis (no pairwise summation), so 8192 ones sum to 2048.
    CuPy's float16 sums, like PyTorch's and XLA's, accumulate in float32 already."""
    return is_half(x.dtype) and type(x).__module__ == "numpy"


def wide_sum(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """``x.sum``, accumulated in float32 where NumPy would not (`narrow_sums`)."""
    if narrow_sums(x):
        return x.sum(axis=axis, keepdims=keepdims, dtype="float32").astype(x.dtype)
    return x.sum(axis=axis, keepdims=keepdims)


def unbroadcast(g: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``g`` over the axes that broadcasting added or stretched to reach its shape."""
    extra = g.ndim - len(shape)
    if extra > 0:
        g = wide_sum(g, axis=0 if extra == 1 else tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if stretched:
        g = wide_sum(g, axis=stretched, keepdims=True)
    return g


def backward(out: Tracer) -> None:
    """Fill ``.g`` of every tracer that ``out`` depends on."""
    value = out.value
    xp = out.tape.xp
    # A scalar one of the output's dtype is cheap and exact; a size-1 output of shape
    # (1, 1) (``w.T @ w``) needs ones of its shape, or the VJPs see too few dimensions.
    out.g = value.dtype.type(1) if value.ndim == 0 else xp.ones_like(value)
    for node in reversed(out.tape.nodes):
        g = node.g
        if g is None:
            continue
        node.g = None  # an intermediate gradient is not needed once passed on
        args = node.args
        for parent, vjp in node.parents:
            if vjp is identity:
                c = g
            elif len(args) == 2:  # the operators: no tuple to unpack
                c = vjp(xp, g, node.value, args[0], args[1])
            else:
                c = vjp(xp, g, node.value, *args)
            shape = parent.value.shape
            if c.shape != shape:
                c = unbroadcast(c, shape)
            pg = parent.g
            parent.g = c if pg is None else pg + c


def value_and_grad(
    f: Callable[..., Any],
    argnums: int | tuple[int, ...],
    xp: Any,
    asarray: Callable[[Any], Any],
    has_aux: bool = False,
    want_value: bool = True,
) -> Callable[..., tuple[Any, Any]]:
    """JAX-style ``value_and_grad`` over arrays of module ``xp``.

    ``want_value=False`` (``grad``): inside a step compiled by the replay compiler, the value
    comes back as None and the replay skips what only the value needed.

    ``asarray`` turns an argument leaf that is not yet an ``xp.ndarray`` (a Python float,
    a host array for CuPy) into one; the backend decides the dtype of Python scalars.
    ``argnums`` may repeat an argument (each entry gets its gradient, as in JAX).
    """
    nums, single = normalize_argnums(argnums)
    ndarray = xp.ndarray
    programs: dict[Any, Any] = {}  # the replay compiler's traces of f, by signature

    def value_and_grad_f(*args: Any) -> tuple[Any, Any]:
        nargs = len(args)
        positions = nums if single and 0 <= nums[0] < nargs else check_argnums(nums, nargs)
        context = getattr(REPLAY, "context", None)
        if context is not None:  # inside a step compiled by the replay compiler
            unique = positions if single else tuple(dict.fromkeys(positions))
            out, aux, finished, layout = _replay.replayed_value_and_grad(
                context, programs, f, args, unique, xp, asarray, has_aux, want_value)  # fmt: skip
            return _assemble(out, aux, finished, layout, positions, single, has_aux)
        tape = Tape(xp)
        args = list(args)
        traced = []
        for i in positions if single else dict.fromkeys(positions):  # each argument once
            leaves, rebuild = flatten(args[i])
            tracers = []
            for leaf in leaves:
                if type(leaf) is not ndarray:
                    leaf = _leaf_array(leaf, asarray)
                if leaf.dtype.kind not in "fc":
                    raise TypeError(
                        f"grad needs floating-point arguments, got {leaf.dtype} (argument {i})"
                    )
                tracers.append(Tracer(leaf, tape, (), ()))
            args[i] = rebuild(tracers)
            traced.append((i, tracers, rebuild))
        try:
            out, aux = loss_output(f(*args), has_aux)
            if has_aux:
                aux = tree_map(_constant, aux)
            value = checked_output(out, tape)
            if type(out) is Tracer:
                backward(out)
        finally:
            # The tape and its nodes point at each other: break the cycle so they are freed
            # now, not at the next garbage collection (~15% of a linreg step); the locked
            # constants are writeable again.
            tape.release()
        finished = [_finish(t, xp) for _, tracers, _ in traced for t in tracers]
        layout = [(i, len(tracers), rebuild) for i, tracers, rebuild in traced]
        return _assemble(value, aux, finished, layout, positions, single, has_aux)

    return value_and_grad_f


def _assemble(
    value: Any, aux: Any, finished: list[Any], layout: list[tuple[int, int, Any]],
    positions: tuple[int, ...], single: bool, has_aux: bool,
) -> tuple[Any, Any]:  # fmt: skip
    """``value_and_grad``'s result from the gradient leaves, in the arguments' structure;
    ``layout`` is ``(argnum, leaves, rebuild)`` per differentiated argument."""
    finished = _own(finished)
    if single:
        grad = layout[0][2](finished)
    else:
        grads, start = {}, 0
        for i, count, rebuild in layout:
            grads[i] = rebuild(finished[start : start + count])
            start += count
        grad = _distinct(tuple(grads[i] for i in positions))
    return ((value, aux) if has_aux else value), grad


def checked_output(out: Any, tape: Tape) -> Any:
    """The value of ``f``'s output: one element, traced on ``tape`` or a floating-point
    constant (``f`` does not depend on its arguments); else the error JAX would give."""
    if type(out) is Tracer:
        if out.tape is not tape:  # f returned an outer grad's tracer
            raise TypeError(NESTED)
        if out.value.size != 1:
            raise _not_scalar_shape(out.value)
        return out.value
    if getattr(out, "size", 1) != 1:
        raise _not_scalar_shape(out)
    kind = getattr(getattr(out, "dtype", None), "kind", "f")
    if isinstance(out, (bool, int)) or kind not in "fc":
        raise TypeError(
            "value_and_grad needs f to return a floating-point scalar, got "
            f"{getattr(out, 'dtype', type(out).__name__)} (as in JAX)"
        )
    return out


def _not_scalar_shape(value: Any) -> ValueError:
    return ValueError(f"value_and_grad needs f to return a scalar, got shape {tuple(value.shape)}")


def _constant(leaf: Any) -> Any:
    """An aux output leaf as a plain value (aux is not differentiated)."""
    return leaf.value if type(leaf) is Tracer else leaf


def _leaf_array(leaf: Any, asarray: Callable[[Any], Any]) -> Any:
    if type(leaf) is Tracer:
        raise TypeError(NESTED)
    return asarray(leaf)


def _distinct(grads: tuple) -> tuple:
    """A repeated argnum's gradient a second time as a copy, not the same arrays."""
    seen: set[int] = set()
    out = []
    for g in grads:
        if id(g) in seen:
            g = tree_map(lambda a: a.copy(), g)
        seen.add(id(g))
        out.append(g)
    return tuple(out)


def _own(grads: list[Any]) -> list[Any]:
    """``grads`` with any array handed out twice (both arguments of an add) copied."""
    if len(grads) > 1 and len({id(g) for g in grads}) != len(grads):
        seen: set[int] = set()
        for k, g in enumerate(grads):
            if id(g) in seen:
                grads[k] = g.copy()
            seen.add(id(grads[k]))
    return grads


def _finish(t: Tracer, xp: Any) -> Any:
    """The gradient of leaf ``t``: an array of its own, in the leaf's dtype."""
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
    if g.base is not None:
        # a view (a broadcast one is read-only; any view shares memory with another
        # gradient or an input): hand back an array of its own
        return g.copy()
    return g


def _operator(prim: Primitive, reflected: bool) -> Callable[[Tracer, Any], Tracer]:
    """The tracer method of a binary operator in the table (``__add__``, ``__radd__``):
    ``binary`` inlined, as these run on every step of a training loop."""
    op = prim.op
    vjp_a, vjp_b = prim.vjps
    reads = prim.reads

    if reflected:

        def reflected_method(self: Tracer, other: Any) -> Tracer:  # other <op> self
            if type(other) is Tracer:
                return binary(prim, other, self)
            value = self.value
            tape = self.tape
            if reads and type(other) is tape.ndarray:  # Tape.keep, inlined
                other = other.copy() if other.size <= COPY_ELEMENTS else tape.lock(other)
            return Tracer(op(other, value), tape, ((self, vjp_b),), (other, value), prim)

        return reflected_method

    def method(self: Tracer, other: Any) -> Tracer:
        value = self.value
        tape = self.tape
        if type(other) is Tracer:
            if other.tape is not tape:
                raise TypeError(NESTED)
            ov = other.value
            return Tracer(op(value, ov), tape, ((self, vjp_a), (other, vjp_b)), (value, ov),
                          prim)  # fmt: skip
        if reads and type(other) is tape.ndarray:  # Tape.keep, inlined
            other = other.copy() if other.size <= COPY_ELEMENTS else tape.lock(other)
        return Tracer(op(value, other), tape, ((self, vjp_a),), (value, other), prim)

    return method



#: The operators, by the name of their NumPy ufunc, made from the table.
_FORWARD: dict[str, Callable[[Tracer, Any], Any]] = {}
_REFLECTED: dict[str, Callable[[Tracer, Any], Any]] = {}
OPERATORS = (("add", "add"), ("subtract", "sub"), ("multiply", "mul"), ("divide", "truediv"),
             ("power", "pow"), ("matmul", "matmul"))  # fmt: skip


def install_operators() -> None:
    """Give ``Tracer`` its operators from the table; ``_vjps`` calls this once it is filled."""
    global _NEG, _GETITEM
    _NEG, _GETITEM = PRIMITIVES["negative"], PRIMITIVES["getitem"]
    for ufunc, dunder in OPERATORS:
        _FORWARD[ufunc] = _operator(PRIMITIVES[ufunc], reflected=False)
        _REFLECTED[ufunc] = _operator(PRIMITIVES[ufunc], reflected=True)
        setattr(Tracer, f"__{dunder}__", _FORWARD[ufunc])
        setattr(Tracer, f"__r{dunder}__", _REFLECTED[ufunc])
    for ufunc, forward, reflected in (
        ("less", "__lt__", "__gt__"), ("less_equal", "__le__", "__ge__"),
        ("greater", "__gt__", "__lt__"), ("greater_equal", "__ge__", "__le__"),
        ("equal", "__eq__", "__eq__"), ("not_equal", "__ne__", "__ne__"),
    ):  # comparisons: constants, either way round
        _FORWARD[ufunc] = getattr(Tracer, forward)
        _REFLECTED[ufunc] = getattr(Tracer, reflected)


#: NumPy functions and the backend method that replaces each (the same name elsewhere).
_VECX_NAMES = {"absolute": "abs", "amax": "max", "amin": "min", "fmax": "maximum",
               "fmin": "minimum", "expit": "sigmoid", "clip": "clip", "where": "where"}  # fmt: skip
#: The backend's math methods a NumPy function may be replaced with.
_VECX_METHODS = frozenset((
    "exp", "log", "tanh", "sigmoid", "sqrt", "abs", "maximum", "minimum", "where", "clip",
    "sum", "mean", "max", "min", "logsumexp", "astype", "isfinite", "matmul",
))  # fmt: skip
#: NumPy functions that are an operator of the arrays.
_OPERATOR_NAMES = {"add": "+", "subtract": "-", "multiply": "*", "divide": "/",
                   "true_divide": "/", "power": "**", "negative": "unary -", "positive": "+",
                   "dot": "@", "matmul": "@"}  # fmt: skip


def _instead(name: str, module: str = "numpy") -> str:
    """The error for NumPy function ``name`` applied to a traced array, with what to use."""
    method = _VECX_NAMES.get(name, name)
    if method in _VECX_METHODS:
        use = f"use be.{method}(...), which differentiates on every backend"
    elif name in _OPERATOR_NAMES:
        use = f"use the operator {_OPERATOR_NAMES[name]} (without out= or other options)"
    else:
        use = ("vecx has no method for it: write it with the operators and the backend's "
               "methods (be.exp, be.log, be.sum, ...)")  # fmt: skip
    return f"{module}.{name} cannot be applied to a traced array: {use}"

# The table lives in _vjps, which fills PRIMITIVES and then calls install_operators();
# the replay compiler (mode="jit") in _replay.
from vecx.backends import _replay, _vjps  # noqa: E402, F401
