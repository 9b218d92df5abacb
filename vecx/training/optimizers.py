"""Optimizers: functional updates of parameter pytrees, the same on every backend.

An optimizer has a state (``init``) and an ``update(params, grads, state, lr)`` that
returns new parameters and a new state. Both are pure: they never write in place, so
they run on immutable JAX arrays and inside ``jax.jit``, and a whole step can be
compiled. The gradients are those of the *mean* batch loss (d2l's convention).

* ``sgd``: ``p <- p - lr g`` (d2l "Linear Regression Implementation from Scratch").
* ``momentum(beta)``: ``v <- beta v + g``, ``p <- p - lr v``, ``v`` starting at 0 (d2l
  "Momentum"; the same update as ``torch.optim.SGD(momentum=beta)``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vecx.protocol import Backend
from vecx.pytree import tree_map

__all__ = ["OPTIMIZERS", "SGD", "Momentum", "Optimizer", "get_optimizer", "momentum", "sgd"]


class Optimizer:
    """The interface: ``name``, ``describe()``, ``init`` and ``update`` (see the module)."""

    name: str = "optimizer"

    def describe(self) -> str:
        """The optimizer and its hyperparameters, as results record it: ``momentum(beta=0.9)``."""
        return self.name

    def init(self, be: Backend, params: Any) -> Any:
        raise NotImplementedError

    def update(self, params: Any, grads: Any, state: Any, lr: Any) -> tuple[Any, Any]:
        raise NotImplementedError


def _map(fn: Callable[..., Any], tree: Any, *rest: Any) -> Any:
    """``tree_map``, with the executors' flat tuples of leaves as the fast path."""
    if type(tree) is tuple:
        return tuple(fn(*leaves) for leaves in zip(tree, *rest, strict=True))
    return tree_map(fn, tree, *rest)


@dataclass(frozen=True)
class SGD(Optimizer):
    """Minibatch stochastic gradient descent: ``p - lr * g``."""

    name = "sgd"

    def init(self, be: Backend, params: Any) -> tuple:
        return ()

    def update(self, params: Any, grads: Any, state: Any, lr: Any) -> tuple[Any, Any]:
        if type(params) is tuple:  # the executors' flat leaves: the hot path, inlined
            return tuple([p - lr * g for p, g in zip(params, grads, strict=True)]), state
        return tree_map(lambda p, g: p - lr * g, params, grads), state

    def __call__(self, params: Any, grads: Any, lr: Any) -> Any:
        """d2l's ``sgd(params, grads, lr)``: the updated parameters (a new pytree)."""
        return self.update(params, grads, (), lr)[0]


@dataclass(frozen=True)
class Momentum(Optimizer):
    """SGD with momentum: ``v = beta v + g``, ``p - lr v`` (torch's ``SGD(momentum=beta)``)."""

    beta: float = 0.9
    name = "momentum"

    def __post_init__(self) -> None:
        if not 0.0 <= self.beta < 1.0:
            raise ValueError(f"momentum beta must be in [0, 1), got {self.beta!r}")

    def describe(self) -> str:
        return f"momentum(beta={self.beta:g})"

    def init(self, be: Backend, params: Any) -> Any:
        return _map(lambda p: be.zeros(tuple(p.shape), _dtype_name(p)), params)

    def update(self, params: Any, grads: Any, state: Any, lr: Any) -> tuple[Any, Any]:
        beta = self.beta
        if type(params) is tuple:  # the executors' flat leaves: the hot path, inlined
            velocity = tuple([beta * v + g for v, g in zip(state, grads, strict=True)])
            return tuple([p - lr * v for p, v in zip(params, velocity, strict=True)]), velocity
        velocity = tree_map(lambda v, g: beta * v + g, state, grads)
        return tree_map(lambda p, v: p - lr * v, params, velocity), velocity


def _dtype_name(x: Any) -> str:
    return str(x.dtype).removeprefix("torch.")


#: d2l's optimizer: ``vecx.sgd(params, grads, lr)``, or ``fit(optimizer="sgd")``.
sgd = SGD()


def momentum(beta: float = 0.9) -> Momentum:
    """SGD with momentum ``beta`` (``fit(optimizer="momentum")`` uses 0.9)."""
    return Momentum(float(beta))


#: Optimizers by the name ``fit(optimizer=...)`` and ``vecx train --optimizer`` take.
OPTIMIZERS: dict[str, Callable[[], Optimizer]] = {"sgd": SGD, "momentum": Momentum}


def get_optimizer(spec: str | Optimizer) -> Optimizer:
    """An optimizer from its name (``"sgd"``, ``"momentum"``) or itself."""
    if isinstance(spec, Optimizer):
        return spec
    if isinstance(spec, str) and spec.lower() in OPTIMIZERS:
        return OPTIMIZERS[spec.lower()]()
    raise ValueError(f"unknown optimizer {spec!r}; choose one of {', '.join(OPTIMIZERS)}")
