"""Built-in training tasks: a model's loss, its initialisation and its metrics, once.

A task is written against the ``Backend`` protocol only, so the same definition trains on
every backend. ``loss(be, params, X, y)`` is the mean loss of a batch, ``init(rng, d, k)``
the initial parameters (host NumPy arrays drawn from ``rng``, a pytree) for ``d`` input
features and ``k`` outputs, and each metric ``metric(be, params, X, y)`` a scalar
evaluated beside the loss at every checkpoint.

* ``linreg``: d2l's linear regression, ``X @ w + b`` with the squared loss ``(y_hat - y)^2 / 2``.
* ``softmax``: softmax regression, ``logsumexp(z) - <y, z>`` for one-hot ``y`` (d2l
  "Softmax Regression Implementation from Scratch", written with ``be.logsumexp`` so it
  cannot overflow).
* ``mlp``: one hidden ReLU layer (``be.maximum(h, 0.0)``) before the softmax output (d2l
  "Implementation of Multilayer Perceptrons").

Classification tasks report ``accuracy``: the share of rows whose true class has the
largest logit, computed with ``be.max`` (no argmax needed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from vecx.protocol import Backend

__all__ = [
    "TASKS",
    "Task",
    "accuracy",
    "cross_entropy",
    "linreg",
    "squared_loss",
]


@dataclass(frozen=True)
class Task:
    """A model and its loss: what ``vecx.fit`` trains and what every backend shares."""

    name: str
    loss: Callable[[Backend, Any, Any, Any], Any]
    init: Callable[[np.random.Generator, int, int], Any]
    metrics: Mapping[str, Callable[[Backend, Any, Any, Any], Any]] = field(
        default_factory=dict
    )
    description: str = ""
    #: What ``y`` holds: ``"values"`` (regression targets, (n,) or (n, k)) or
    #: ``"onehot"`` (class labels one-hot, (n, classes)), checked by ``fit``.
    targets: str = "values"


# --- the model pieces, as d2l names them -----------------------------------------------


def linreg(X: Any, w: Any, b: Any) -> Any:
    """The linear model ``X @ w + b`` (d2l's ``linreg``)."""
    return X @ w + b


def squared_loss(y_hat: Any, y: Any) -> Any:
    """Elementwise ``(y_hat - y)**2 / 2``; ``y`` is reshaped to ``y_hat``'s shape.

    The reshape guards against d2l's classic bug: ``(n, 1) - (n,)`` broadcasts to (n, n).
    """
    if tuple(y.shape) != tuple(y_hat.shape):
        y = y.reshape(y_hat.shape)
    return (y_hat - y) ** 2 / 2


def cross_entropy(be: Backend, logits: Any, y: Any) -> Any:
    """Mean softmax cross-entropy of ``logits`` (n, k) against one-hot (or soft) ``y``."""
    return be.mean(be.logsumexp(logits, axis=1) - be.sum(y * logits, axis=1))


def accuracy(be: Backend, logits: Any, y: Any) -> Any:
    """Share of rows whose labelled class (the largest entry of ``y``, so soft labels work
    too) has the largest logit, written with ``be.max`` (no argmax needed). A tie between
    the largest logits counts as the chance of picking the right one among them (1/2 for
    two), the expected accuracy of breaking ties at random: all-equal logits score 1/k,
    not 1 (an argmax, which picks the first, may differ at exact ties only)."""
    predicted = be.astype(logits >= be.max(logits, axis=1, keepdims=True), be.dtype)
    labelled = be.astype(y >= be.max(y, axis=1, keepdims=True), be.dtype)
    hits = be.sum(predicted * labelled, axis=1)
    return be.mean(hits / (be.sum(predicted, axis=1) * be.sum(labelled, axis=1)))


# --- linear regression ---------------------------------------------------------------


def _linreg_loss(be: Backend, params: Any, X: Any, y: Any) -> Any:
    return squared_loss(linreg(X, params["w"], params["b"]), y).mean()


def _linreg_init(rng: np.random.Generator, d: int, k: int) -> dict[str, np.ndarray]:
    """d2l's initialisation: ``w ~ N(0, 0.01)`` (d, k), ``b = 0`` (k,), in float32."""
    w = rng.normal(0.0, 0.01, (d, k)).astype(np.float32)
    return {"w": w, "b": np.zeros(k, np.float32)}


# --- softmax regression --------------------------------------------------------------


def _softmax_logits(params: Any, X: Any) -> Any:
    return X @ params["W"] + params["b"]


def _softmax_loss(be: Backend, params: Any, X: Any, y: Any) -> Any:
    return cross_entropy(be, _softmax_logits(params, X), y)


def _softmax_accuracy(be: Backend, params: Any, X: Any, y: Any) -> Any:
    return accuracy(be, _softmax_logits(params, X), y)


def _softmax_init(rng: np.random.Generator, d: int, k: int) -> dict[str, np.ndarray]:
    """d2l's ``W ~ N(0, 0.01)`` (d, k), ``b = 0`` (k,)."""
    return {"W": rng.normal(0.0, 0.01, (d, k)).astype(np.float32),
            "b": np.zeros(k, np.float32)}  # fmt: skip


# --- multilayer perceptron -----------------------------------------------------------

#: Width of the ``mlp`` task's hidden layer.
MLP_HIDDEN = 64


def _mlp_logits(be: Backend, params: Any, X: Any) -> Any:
    hidden = be.maximum(X @ params["W1"] + params["b1"], 0.0)  # ReLU
    return hidden @ params["W2"] + params["b2"]


def _mlp_loss(be: Backend, params: Any, X: Any, y: Any) -> Any:
    return cross_entropy(be, _mlp_logits(be, params, X), y)


def _mlp_accuracy(be: Backend, params: Any, X: Any, y: Any) -> Any:
    return accuracy(be, _mlp_logits(be, params, X), y)


def _mlp_init(rng: np.random.Generator, d: int, k: int) -> dict[str, np.ndarray]:
    """Weights ``N(0, 1/fan_in)`` (LeCun's scale: d2l's fixed 0.01 stalls a ReLU layer for
    several epochs), biases 0."""
    h = MLP_HIDDEN
    return {
        "W1": (rng.standard_normal((d, h)) / np.sqrt(d)).astype(np.float32),
        "b1": np.zeros(h, np.float32),
        "W2": (rng.standard_normal((h, k)) / np.sqrt(h)).astype(np.float32),
        "b2": np.zeros(k, np.float32),
    }


#: The built-in tasks by name (read-only).
TASKS: Mapping[str, Task] = MappingProxyType({
    t.name: t
    for t in (
        Task("linreg", _linreg_loss, _linreg_init, {},
             "linear regression, squared loss"),
        Task("softmax", _softmax_loss, _softmax_init, {"accuracy": _softmax_accuracy},
             "softmax regression, cross-entropy", "onehot"),
        Task("mlp", _mlp_loss, _mlp_init, {"accuracy": _mlp_accuracy},
             f"one hidden ReLU layer of {MLP_HIDDEN}, cross-entropy", "onehot"),
    )
})  # fmt: skip
