"""Pytrees: nests of dicts, lists, tuples and namedtuples with arrays at the leaves.

Parameters, gradients and optimizer states are pytrees, as in JAX: ``{"W": ..., "b": ...}``,
``[(W1, b1), (W2, b2)]`` or a namedtuple. ``None`` is an empty subtree (no leaf), so a
parameter slot can be left out and its gradient is ``None``, as in JAX. The nodes are
``dict`` (and its subclasses: ``OrderedDict``, ``defaultdict``), ``list``, ``tuple``
(namedtuples included) and ``None``; everything else is a leaf. vecx's own
differentiators (NumPy, CuPy, PyTorch) and the trainer use these functions; JAX uses its
own, which agree on these containers but for the order of a dict's keys (JAX sorts them;
vecx's JAX backend hands gradient dicts back in the arguments' order).

This module imports nothing of vecx's and no framework, so every layer may use it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["flatten", "is_namedtuple", "leaves", "structure", "tree_map"]

Rebuild = Callable[[list[Any]], Any]


def is_namedtuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def flatten(tree: Any) -> tuple[list[Any], Rebuild]:
    """The leaves of ``tree`` in order, and a function that rebuilds it from new leaves."""
    kind = type(tree)
    if kind is dict:
        values = list(tree.values())
        if _all_leaves(values):
            keys = tuple(tree)  # the common flat {"w": ..., "b": ...}: the fast path
            return values, lambda new: dict(zip(keys, new, strict=True))
    elif kind is tuple or kind is list:
        if _all_leaves(tree):
            return list(tree), kind  # a flat tuple or list of leaves: the other fast path
    if tree is None:
        return [], _none
    if isinstance(tree, dict):
        keys = list(tree)
        children = [tree[k] for k in keys]
        make = _mapping_maker(tree, keys)
    elif isinstance(tree, (tuple, list)):
        children = list(tree)
        make = kind._make if is_namedtuple(tree) else kind
    else:
        return [tree], _single
    parts = [flatten(child) for child in children]
    sizes = [len(p[0]) for p in parts]

    def rebuild(new: list[Any]) -> Any:
        out, start = [], 0
        for (_, child), n in zip(parts, sizes, strict=True):
            out.append(child(new[start : start + n]))
            start += n
        return make(out)

    return [leaf for p in parts for leaf in p[0]], rebuild


def leaves(tree: Any) -> list[Any]:
    """The leaves of ``tree`` in :func:`flatten`'s order."""
    return flatten(tree)[0]


def structure(tree: Any) -> Any:
    """A hashable description of ``tree``'s nodes (not its leaves): equal for two trees
    that :func:`flatten` and rebuild the same way."""
    if tree is None:
        return None
    if isinstance(tree, dict):
        return (type(tree), tuple((k, structure(v)) for k, v in tree.items()))
    if isinstance(tree, (tuple, list)):
        return (type(tree), tuple(structure(v) for v in tree))
    return "*"


def tree_map(fn: Callable[..., Any], tree: Any, *rest: Any) -> Any:
    """``fn`` applied leaf by leaf to ``tree`` and trees of the same structure (``rest``)."""
    if tree is None:
        return None
    if isinstance(tree, dict):
        keys = list(tree)
        values = [tree_map(fn, tree[k], *(r[k] for r in rest)) for k in keys]
        return _mapping_maker(tree, keys)(values)
    if isinstance(tree, (tuple, list)):
        for r in rest:
            if len(r) != len(tree):
                raise ValueError(f"trees differ in length: {len(tree)} and {len(r)}")
        values = [tree_map(fn, *parts) for parts in zip(tree, *rest, strict=True)]
        return type(tree)._make(values) if is_namedtuple(tree) else type(tree)(values)
    return fn(tree, *rest)


_NODES = (dict, list, tuple)


def _all_leaves(values: Any) -> bool:
    """Whether none of ``values`` is a node (a loop: a generator costs ~1 us per call)."""
    for v in values:
        if v is None or isinstance(v, _NODES):
            return False
    return True


def _mapping_maker(tree: dict, keys: list[Any]) -> Callable[[list[Any]], Any]:
    kind = type(tree)

    def make(values: list[Any]) -> Any:
        pairs = list(zip(keys, values, strict=True))
        if kind is dict:
            return dict(pairs)
        try:
            return kind(pairs)  # OrderedDict and other mappings built from pairs
        except TypeError:  # defaultdict and friends: a plain dict of the same items
            return dict(pairs)

    return make


def _none(new: list[Any]) -> None:
    return None


def _single(new: list[Any]) -> Any:
    return new[0]
