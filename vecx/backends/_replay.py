"""The replay compiler of vecx's NumPy/CuPy autodiff: ``mode="jit"`` without a framework.

``NumpyBackend.compile(step, mode="jit")`` returns a `Replayed` step: while it runs, every
``be.value_and_grad`` function called inside it is traced once per signature (the shapes
and dtypes of its array arguments, the structure and values of the rest) and then
replayed. Tracing runs ``f`` on tracers, every array argument one (the data as well as
the differentiated parameters), on a recording tape that makes a node of every array
computed from a tracer (comparison masks and casts to integers too, which the eager
autodiff gives as constants). The tape becomes the source of one Python function, as
a small compiler would emit it: the forward primitives in order, the operators written
as operators, then the VJPs of the nodes on a path to a differentiated argument (the
others are dropped), each contribution un-broadcast and summed into its parent. The
common VJPs and reductions are written out rather than called; a line computed from
constants alone (the seed gradient 1 and the mean's spread of it) is computed once, at
trace time; and with ``be.grad``, which the trainer's step uses, what only the loss's
value needed is dropped. A replay builds no tracer, no tape and no copy of a
constant: it is close to the hand-written gradient's sequence of NumPy calls.

A trace keeps what is not an argument, as ``jax.jit`` does: arrays from the enclosing
scope (copied once) and Python numbers. A loss that draws random numbers cannot be
replayed (its draws would be recorded once): the draw raises ``TracedRandomness`` while
tracing. Python control flow may depend on shapes only, which are part of the signature.
"""

from __future__ import annotations

import copy
import functools
import itertools
import operator
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from vecx.backends._autodiff import (
    NESTED,
    REPLAY,
    Tape,
    Tracer,
    _leaf_array,
    checked_output,
    identity,
    narrow_sums,
    unbroadcast,
)
from vecx.backends._base import loss_output
from vecx.protocol import Recompiled
from vecx.pytree import flatten, structure

__all__ = ["Replayed", "replayed_value_and_grad"]

#: Signatures kept per value_and_grad function before the oldest are dropped.
PROGRAMS_PER_FUNCTION = 64

_OPERATORS = {operator.add: "+", operator.sub: "-", operator.mul: "*",
              operator.truediv: "/", operator.pow: "**", operator.matmul: "@"}  # fmt: skip


class Replayed:
    """``f`` with each ``value_and_grad`` inside it replayed (module docstring).

    ``compiles()`` counts the traces made under it; once ``sealed``, a trace (a new
    shape or dtype, a new constant) raises `vecx.Recompiled` instead: the trainer seals it
    after its warm-up, so no compile happens inside the timed region.
    """

    def __init__(self, f: Callable[..., Any]) -> None:
        self.f = f
        self.traces = 0
        self.sealed = False

    def __call__(self, *args: Any) -> Any:
        previous = getattr(REPLAY, "context", None)
        REPLAY.context = self
        try:
            return self.f(*args)
        finally:
            REPLAY.context = previous

    def compiles(self) -> int:
        return self.traces

    def seal(self, sealed: bool = True) -> None:
        self.sealed = sealed


def _signature(
    args: tuple, unique: tuple[int, ...], ndarray: type, asarray: Callable[[Any], Any]
) -> tuple[tuple, list[Any]]:
    """What a trace depends on (array shapes and dtypes, everything else by value), and
    the array leaves of ``args`` in order: the replay's inputs. Arrays and tuples of
    arrays (the trainer's flat parameters) are the fast path: a step's overhead."""
    inputs: list[Any] = []
    lengths: list[int] = []
    for a in args:
        kind = type(a)
        if kind is ndarray:
            inputs.append(a)
            lengths.append(-1)
        elif kind is tuple:
            for v in a:
                if type(v) is ndarray:
                    inputs.append(v)
                elif isinstance(v, np.generic):  # a 0-d array after an SGD step
                    inputs.append(asarray(v))
                else:
                    return _general_signature(args, unique, ndarray, asarray)
            lengths.append(len(a))
        elif isinstance(a, np.generic):
            inputs.append(asarray(a))
            lengths.append(-1)
        else:
            return _general_signature(args, unique, ndarray, asarray)
    return (tuple(lengths), *[(v.shape, v.dtype) for v in inputs]), inputs


def _general_signature(
    args: tuple, unique: tuple[int, ...], ndarray: type, asarray: Callable[[Any], Any]
) -> tuple[tuple, list[Any]]:
    key: list[Any] = ["general"]
    inputs: list[Any] = []
    for i, a in enumerate(args):
        leaves, _ = flatten(a)
        if i in unique:  # a Python float differentiated: an array, as when traced
            leaves = [v if type(v) is ndarray else _leaf_array(v, asarray) for v in leaves]
        else:  # a NumPy scalar (an SGD step makes one of a 0-d array): an input too
            leaves = [asarray(v) if isinstance(v, np.generic) else v for v in leaves]
        key.append((structure(a), tuple((v.shape, v.dtype) if type(v) is ndarray
                                        else _constant_key(v) for v in leaves)))  # fmt: skip
        inputs.extend(v for v in leaves if type(v) is ndarray)
    return tuple(key), inputs


def _constant_key(v: Any) -> Any:
    if type(v) is Tracer:
        raise TypeError(NESTED)
    try:
        hash(v)
    except TypeError:
        return ("id", id(v))  # unhashable: the same object only
    return (type(v), v)


def replayed_value_and_grad(
    context: Replayed, programs: dict[Any, Any], f: Callable[..., Any], args: tuple,
    unique: tuple[int, ...], xp: Any, asarray: Callable[[Any], Any], has_aux: bool,
    want_value: bool = True,
) -> tuple[Any, Any, list[Any], list[tuple[int, int, Any]]]:  # fmt: skip
    """``(value, aux, gradient leaves, layout)`` of ``f`` at ``args`` by a replay, traced
    first if this signature is new; ``layout`` is ``(argnum, leaves, rebuild)`` per
    differentiated argument, as the eager path builds it. Without ``want_value`` the
    value is None and the replay computes only what the gradients need."""
    ndarray = xp.ndarray
    signature, inputs = _signature(args, unique, ndarray, asarray)
    key = (unique, signature)
    program = programs.get(key)
    if program is None:
        if context.sealed:
            raise Recompiled(
                "the step was traced again inside the timed region (new shapes, dtypes or "
                f"constants: {_describe(args, ndarray)}); the warm-up compiles every shape "
                "a run uses"
            )
        context.traces += 1
        program = _trace(f, args, unique, xp, asarray, has_aux, want_value)
        if len(programs) >= PROGRAMS_PER_FUNCTION:
            programs.clear()
        programs[key] = program
    run, layout, aux_rebuild = program
    value, aux, grads = run(*inputs)
    return value, (aux_rebuild(list(aux)) if has_aux else None), list(grads), layout


def _describe(args: tuple, ndarray: type) -> str:
    shapes = []
    for a in args:
        for leaf in flatten(a)[0]:
            if type(leaf) is ndarray or isinstance(leaf, np.generic):
                shapes.append(f"{leaf.dtype}{list(np.shape(leaf))}")
            else:
                shapes.append(f"{type(leaf).__name__} {str(leaf)[:16]}")
    return ", ".join(shapes)


def _trace(
    f: Callable[..., Any], args: tuple, unique: tuple[int, ...], xp: Any,
    asarray: Callable[[Any], Any], has_aux: bool, want_value: bool,
) -> tuple[Callable[..., Any], list[tuple[int, int, Any]], Any]:  # fmt: skip
    tape = Tape(xp, recording=True)
    ndarray = xp.ndarray
    traced_args = list(args)
    inputs: list[Tracer] = []
    differentiated: dict[int, list[Tracer]] = {}
    rebuilds = {}
    for i, a in enumerate(args):
        leaves, rebuild = flatten(a)
        new = []
        for leaf in leaves:
            if type(leaf) is Tracer:
                raise TypeError(NESTED)
            if i in unique:
                if type(leaf) is not ndarray:
                    leaf = _leaf_array(leaf, asarray)
                if leaf.dtype.kind not in "fc":
                    raise TypeError(
                        f"grad needs floating-point arguments, got {leaf.dtype} (argument {i})"
                    )
            elif isinstance(leaf, np.generic):  # a NumPy scalar: an input, as 0-d arrays are
                leaf = xp.asarray(leaf)
            if type(leaf) is ndarray:
                # a view: an object of its own, so that the same array passed twice, or
                # also held by the function as a constant, is told apart
                leaf = Tracer(leaf.view(), tape, (), ())
                inputs.append(leaf)
            new.append(leaf)
        traced_args[i] = rebuild(new)
        if i in unique:
            differentiated[i] = new
            rebuilds[i] = rebuild
    layout = [(i, len(differentiated[i]), rebuilds[i]) for i in unique]  # as the eager path
    tracing = getattr(REPLAY, "tracing", False)
    REPLAY.tracing = True
    try:
        out, aux = loss_output(f(*traced_args), has_aux)
        aux_leaves, aux_rebuild = flatten(aux) if has_aux else ([], None)
        checked_output(out, tape)
        wrt = [t for i in unique for t in differentiated[i]]
        # First with every contribution's shape noted, run once on the traced values;
        # then again with un-broadcasting only where a shape differed (most need none).
        observed: dict[str, Any] = {}
        _emit(tape, inputs, wrt, out, aux_leaves, xp, observed)(*(t.value for t in inputs))
        run = _emit(tape, inputs, wrt, out, aux_leaves, xp, observed, final=True,
                    want_value=want_value)  # fmt: skip
    finally:
        REPLAY.tracing = tracing
        tape.release()
    return run, layout, aux_rebuild


def _emit(
    tape: Tape, inputs: list[Tracer], wrt: list[Tracer], out: Any, aux: list[Any], xp: Any,
    observed: dict[str, Any], *, final: bool = False, want_value: bool = True,
) -> Callable[..., Any]:  # fmt: skip
    """The source of the replay, compiled: forward, backward, the gradients finished.

    Not ``final``, every line's value (and each VJP contribution's shape) is written to
    ``observed`` as it runs. ``final``, from what was observed: a contribution is
    un-broadcast only where its shape differed, written out; a line whose operands are
    all constants (the seed gradient 1 and what follows from it alone, such as the
    mean's spread) is computed once, here; a line nothing returned depends on is dropped
    (the loss's value, when ``want_value`` is false, as for ``be.grad``).
    """
    from vecx.backends._vjps import _spread

    namespace: dict[str, Any] = {"xp": xp, "unbroadcast": unbroadcast,
                                 "finish": _finisher(xp), "observed": observed}  # fmt: skip
    counter = itertools.count()
    by_value: dict[int, str] = {}  # id of a traced value -> its variable
    by_node: dict[int, str] = {}  # id of a tracer -> its variable
    for k, t in enumerate(inputs):
        by_value[id(t.value)] = by_node[id(t)] = f"i{k}"

    def constant(value: Any) -> str:
        name = f"c{next(counter)}"
        namespace[name] = (value.copy() if type(value) is tape.ndarray
                           else copy.deepcopy(value))  # a snapshot, as jax.jit takes  # fmt: skip
        return name

    def operand(value: Any) -> str:
        return by_value.get(id(value)) or constant(value)

    lines: list[tuple[str, str]] = []  # (variable, expression), in order
    nodes = tape.nodes
    operands: list[list[str]] = []
    for k, node in enumerate(nodes):
        names = [operand(a) for a in node.args]
        operands.append(names)
        prim = node.prim
        if prim.name == "getitem" and _VARIABLE.fullmatch(names[1]) and (
                getattr(getattr(node.args[1], "dtype", None), "kind", "") == "b"):  # fmt: skip
            raise TypeError(
                "a boolean-mask selection of traced values has a shape that depends on the "
                "data, which a replayed step cannot follow (mode 'jit' on NumPy and CuPy; "
                "JAX's jit refuses it too): use be.where(mask, x, 0) instead"
            )
        symbol = _OPERATORS.get(prim.op) if prim.op is not None else None
        inline = _inline_forward(prim.name, names, node.args, node.value)
        if symbol is not None and len(names) == 2:
            expr = f"{names[0]} {symbol} {names[1]}"
        elif prim.op is operator.neg:
            expr = f"-{names[0]}"
        elif inline is not None:
            expr = inline
        else:
            namespace[f"p{k}"] = prim.fn
            expr = f"p{k}(xp, {', '.join(names)})"
        lines.append((f"v{k}", expr))
        by_value[id(node.value)] = by_node[id(node)] = f"v{k}"
    value = by_node[id(out)] if type(out) is Tracer else constant(out)

    # backward: only the nodes on a path to a differentiated argument
    needs = {id(t) for t in wrt}
    for node in nodes:
        if any(id(p) in needs for p, _ in node.parents):
            needs.add(id(node))
    grads: dict[int, str] = {}
    if type(out) is Tracer and id(out) in needs:
        seed = out.value.dtype.type(1) if out.value.ndim == 0 else xp.ones_like(out.value)
        lines.append(("g_out", constant(seed)))
        grads[id(out)] = "g_out"
        for k in range(len(nodes) - 1, -1, -1):
            node = nodes[k]
            g = grads.get(id(node))
            if g is None:
                continue
            for position, (parent, vjp) in zip(_positions(node), node.parents, strict=True):
                if id(parent) not in needs:
                    continue
                n = next(counter)
                name = node.prim.name
                inline = _inline_vjp(name, position, g, f"v{k}", operands[k], node.args)
                if vjp is identity:
                    contribution = g
                elif inline is not None:
                    contribution = inline
                elif name in ("sum", "mean"):  # the spread needs x's shape, not x
                    x, axis, keepdims = node.args
                    count = x.size // (node.value.size or 1) if name == "mean" else 1
                    like = _Like(x.shape, x.dtype)
                    namespace[f"j{n}"] = functools.partial(
                        _spread, xp, x=like, axis=axis, keepdims=keepdims,
                        scale=count if count != 1 else None)  # fmt: skip
                    contribution = f"j{n}(g={g})"
                else:
                    namespace[f"j{n}"] = vjp
                    contribution = f"j{n}(xp, {g}, v{k}, {', '.join(operands[k])})"
                shape = tuple(parent.value.shape)
                key = f"shape{n}"
                if not final:  # noted, then un-broadcast wherever it has to be
                    contribution = f"unbroadcast(note({key!r}, {contribution}), {shape!r})"
                elif observed[key] != shape:
                    contribution = (_unbroadcast(contribution, observed[key], shape)
                                    if not narrow_sums(parent.value)
                                    else f"unbroadcast({contribution}, {shape!r})")
                previous = grads.get(id(parent))
                if previous is None and contribution == g:  # passed on as it is
                    grads[id(parent)] = g
                    continue
                grads[id(parent)] = target = f"g{n}"  # a new name: another may share the old
                lines.append((target, contribution if previous is None
                              else f"{previous} + {contribution}"))  # fmt: skip
    results = [grads.get(id(t)) for t in wrt]
    aux_names = [by_node[id(a)] if type(a) is Tracer else constant(a) for a in aux]
    aux_out = [f"_copy({a})" if not a.startswith("v") and not a.startswith("i") else a
               for a in aux_names]  # a constant aux leaf: a copy at every call
    namespace["_copy"] = lambda v: v.copy() if hasattr(v, "copy") else v
    returned = [*(r for r in results if r), *aux_names, *([value] if want_value else [])]

    if not final:
        def note(key: str, t: Any) -> Any:
            observed[key] = tuple(getattr(t, "shape", ()))
            return t

        namespace["note"] = note
        body = [f"{var} = {expr}; observed[{var!r}] = {var}" for var, expr in lines]
    else:
        body, folded = _fold_and_prune(lines, returned, observed, namespace)

    def output(name: str | None, like: Tracer) -> str:
        """A gradient as the eager path hands it back (``_autodiff._finish``): an array
        of its own in its argument's dtype; what to do is known from the trace."""
        arg = by_node[id(like)]
        if name is None:
            return f"xp.zeros_like({arg})"
        if not final:
            return f"finish({name}, {arg})"
        seen = observed[name] if name in observed else None
        if name in folded:  # never hand out a constant: a copy, in the right dtype
            return f"xp.array({name}, dtype={arg}.dtype)"
        if type(seen) is not tape.ndarray or seen.dtype != like.value.dtype:
            return f"finish({name}, {arg})"
        return f"({name} if {name}.base is None else {name}.copy())"

    finished = [output(r, t) for r, t in zip(results, wrt, strict=True)]
    shown = value if want_value else "None"
    body.append(f"return {shown}, ({''.join(a + ', ' for a in aux_out)}), "
                f"({''.join(g + ', ' for g in finished)})")  # fmt: skip
    params = ", ".join(f"i{k}" for k in range(len(inputs)))
    source = f"def replay({params}):\n" + "".join(f"    {line}\n" for line in body)
    exec(compile(source, "<vecx replay>", "exec"), namespace)  # noqa: S102 - our own source
    run = namespace["replay"]
    run.source = source  # type: ignore[attr-defined]
    return run


_VARIABLE = re.compile(r"\b(?:[ivg]\d+|g_out)\b")


def _fold_and_prune(
    lines: list[tuple[str, str]], returned: list[str], observed: dict[str, Any],
    namespace: dict[str, Any],
) -> tuple[list[str], set[str]]:  # fmt: skip
    """The body's lines without those computed from constants alone (their observed
    value is bound in ``namespace`` under the variable's name) and without those nothing
    returned depends on; and the folded names."""
    folded: set[str] = set()
    kept: list[tuple[str, str, list[str]]] = []
    for var, expr in lines:
        used = _VARIABLE.findall(expr)
        if all(u in folded for u in used):
            namespace[var] = observed[var]
            folded.add(var)
        else:
            kept.append((var, expr, used))
    needed = {r for r in returned if r not in folded}
    body = []
    for var, expr, used in reversed(kept):
        if var in needed:
            body.append(f"{var} = {expr}")
            needed.update(u for u in used if u not in folded)
    return body[::-1], folded


class _Like:
    """What the reductions' VJPs read of their argument: its shape and dtype."""

    __slots__ = ("shape", "dtype")

    def __init__(self, shape: tuple[int, ...], dtype: Any) -> None:
        self.shape, self.dtype = shape, dtype


def _positions(node: Tracer) -> list[int]:
    """The argument position of each of ``node``'s parents, in order (the tape keeps the
    parents of the traced arguments that have a VJP, in argument order)."""
    vjps = node.prim.vjps
    return [i for i, a in enumerate(node.args)
            if i < len(vjps) and vjps[i] is not None and _traced_at(node, i)][:len(node.parents)]


def _traced_at(node: Tracer, i: int) -> bool:
    value = node.args[i]
    return any(parent.value is value for parent, _ in node.parents)


def _unbroadcast(expr: str, got: tuple[int, ...], shape: tuple[int, ...]) -> str:
    """``unbroadcast(expr, shape)`` written out for a contribution of shape ``got``."""
    extra = len(got) - len(shape)
    if extra < 0:
        return f"unbroadcast({expr}, {shape!r})"
    if extra:
        expr = f"({expr}).sum(axis={0 if extra == 1 else tuple(range(extra))!r})"
        got = got[extra:]
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and got[i] != 1)
    if stretched:
        expr = f"({expr}).sum(axis={stretched!r}, keepdims=True)"
    return expr


def _inline_forward(name: str, names: list[str], args: tuple, value: Any) -> str | None:
    """A reduction written out (what ``_vjps``' primitive computes, without its call)."""
    if name == "sum" and not narrow_sums(args[0]):  # else the primitive's wide_sum
        return f"{names[0]}.sum(axis={args[1]!r}, keepdims={args[2]!r})"
    if name == "mean":
        x = args[0]
        if x.dtype.kind == "f" and x.dtype.itemsize >= 4:
            count = x.size // (value.size or 1)
            return f"{names[0]}.sum(axis={args[1]!r}, keepdims={args[2]!r}) / {count}"
    return None


def _inline_vjp(
    name: str, position: int, g: str, ans: str, names: list[str], args: tuple
) -> str | None:
    """The VJP of ``_vjps`` for these operands, written out (no call, no type checks at
    each replay), where it is one expression; None: call the table's function."""
    if name == "multiply":
        return f"{g} * {names[1 - position]}"
    if name == "divide":
        return f"{g} / {names[1]}" if position == 0 else f"-{g} * {ans} / {names[1]}"
    if name in ("negative",) or (name == "subtract" and position == 1):
        return f"-{g}"
    if name == "power" and position == 0 and type(args[1]) in (int, float):
        p = args[1]
        if p == 1:
            return g
        if p == 2:
            return f"{g} * (2 * {names[0]})"
        if p != 0:
            return f"{g} * ({names[1]} * {names[0]} ** ({names[1]} - 1))"
        return None
    if name == "matmul" and args[0].ndim == 2 and args[1].ndim == 2:
        return f"{g} @ {names[1]}.T" if position == 0 else f"{names[0]}.T @ {g}"
    if name == "transpose":
        return f"{g}.T"
    if name == "exp":
        return f"{g} * {ans}"
    if name == "log":
        return f"{g} / {names[0]}"
    if name == "tanh":
        return f"{g} * (1 - {ans} * {ans})"
    return None


def _finisher(xp: Any) -> Callable[[Any, Any], Any]:
    """A gradient as the eager path hands it back: an array of its own, in the dtype of
    its argument (``_autodiff._finish``)."""
    ndarray = xp.ndarray

    def finish(g: Any, like: Any) -> Any:
        if type(g) is not ndarray:
            return xp.asarray(g, dtype=like.dtype)
        if g.dtype != like.dtype:
            return g.astype(like.dtype)
        if g.base is not None:
            return g.copy()
        return g

    return finish
