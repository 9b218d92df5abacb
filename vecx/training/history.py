"""What a training run produced: its checkpoints, final parameters, and their JSON form.

``History.to_dict()`` is the JSON contract of ``vecx train --json`` and of the ``train``
suite's curves (docs/architecture.md). Parameters are any pytree (``vecx.pytree``); in
JSON an array is a nested list of numbers, a dict an object, and tuples, lists and
namedtuples are tagged (``{"__tuple__": [...]}``) so that they come back as they went.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vecx.pytree import is_namedtuple, leaves

__all__ = ["Checkpoint", "History", "decode_params", "encode_params"]


@dataclass(frozen=True)
class Checkpoint:
    """One evaluation on the whole data set, as passed to ``fit(callback=...)``."""

    step: int
    epoch: int
    examples: int
    loss: float
    time: float  # cumulative training seconds (evaluations excluded)
    total_examples: int
    metrics: Mapping[str, float] = field(default_factory=dict)  # e.g. {"accuracy": 0.97}


@dataclass
class History:
    """A training run: one entry per checkpoint in ``examples``, ``losses``, ``times``,
    ``steps`` and each list of ``metrics``, and the parameters where it ended."""

    examples: list[int]
    losses: list[float]
    times: list[float]
    params: Any  # the structure of the initial parameters, as NumPy arrays; None if lost
    lr: float
    batch_size: int
    epochs: int
    backend: str
    preset: str | None = None
    steps: list[int] = field(default_factory=list)
    metrics: dict[str, list[float]] = field(default_factory=dict)
    optimizer: str = "sgd"
    executor: str = "steps"
    #: A partial run: stopped by Ctrl-C, or the `TrainingDiverged` message. The
    #: checkpoints are those before it; ``params`` are where it stopped, or None if they
    #: are not finite.
    interrupted: bool = False
    diverged: str | None = None

    @property
    def complete(self) -> bool:
        """Whether the run trained every epoch (not interrupted, not diverged)."""
        return not (self.interrupted or self.diverged)

    @property
    def loss(self) -> float:
        """The final whole-data loss (the last checkpoint's, for a partial run)."""
        return self.losses[-1]

    @property
    def accuracy(self) -> float | None:
        """The final accuracy, for a task that measures one; else None."""
        values = self.metrics.get("accuracy")
        return values[-1] if values else None

    @property
    def epoch_time(self) -> float:
        """Mean training seconds per epoch (checkpoint evaluations excluded)."""
        return self.times[-1] / self.epochs

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict in the documented field order.

        A partial run adds ``"interrupted": true`` or ``"diverged": message``; its
        ``loss`` is the last checkpoint's (null without one), ``epoch_time`` is null
        (no whole run to average over) and ``params`` null when they are not finite.
        """
        doc = {
            "preset": self.preset,
            "backend": self.backend,
            "optimizer": self.optimizer,
            "executor": self.executor,
            "lr": float(self.lr),
            "batch_size": int(self.batch_size),
            "epochs": int(self.epochs),
            "examples": [int(e) for e in self.examples],
            "losses": [float(v) for v in self.losses],
            "times": [float(t) for t in self.times],
            "metrics": {k: [float(v) for v in vs] for k, vs in self.metrics.items()},
            "loss": float(self.loss) if self.losses else None,
            "epoch_time": float(self.epoch_time) if self.complete and self.times else None,
            "params": encode_params(self.params) if self.params is not None else None,
            "dtype": _dtype_of(self.params),
        }
        if self.interrupted:
            doc["interrupted"] = True
        if self.diverged:
            doc["diverged"] = self.diverged
        return doc

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> History:
        """Inverse of :meth:`to_dict` (params in the recorded dtype, float32 by default)."""
        params = d.get("params")
        return cls(
            examples=list(d["examples"]),
            losses=list(d["losses"]),
            times=list(d["times"]),
            params=decode_params(params, d.get("dtype") or "float32") if params else None,
            lr=d["lr"],
            batch_size=d["batch_size"],
            epochs=d["epochs"],
            backend=d["backend"],
            preset=d.get("preset"),
            metrics={k: list(v) for k, v in (d.get("metrics") or {}).items()},
            optimizer=d.get("optimizer", "sgd"),
            executor=d.get("executor", "steps"),
            interrupted=bool(d.get("interrupted", False)),
            diverged=d.get("diverged"),
        )


def _dtype_of(params: Any) -> str | None:
    found = [np.asarray(leaf).dtype for leaf in leaves(params)] if params is not None else []
    return str(found[0]) if found else None


def encode_params(tree: Any) -> Any:
    """``tree`` (a pytree of arrays) as JSON: arrays as nested lists of numbers."""
    if tree is None:
        return None
    if isinstance(tree, dict):
        return {str(k): encode_params(v) for k, v in tree.items()}
    if is_namedtuple(tree):
        return {"__namedtuple__": type(tree).__name__,
                "fields": {f: encode_params(v) for f, v in zip(tree._fields, tree, strict=True)}}
    if isinstance(tree, tuple):
        return {"__tuple__": [encode_params(v) for v in tree]}
    if isinstance(tree, list):
        return {"__list__": [encode_params(v) for v in tree]}
    values = np.asarray(tree, dtype=np.float64)
    if not np.isfinite(values).all():
        raise ValueError("parameters with nan or inf cannot be written as JSON")
    return values.tolist()


def decode_params(doc: Any, dtype: str = "float32") -> Any:
    """Inverse of :func:`encode_params`; a namedtuple comes back as a namedtuple of the
    same name and fields."""
    if doc is None:
        return None
    if isinstance(doc, dict):
        if "__tuple__" in doc and len(doc) == 1:
            return tuple(decode_params(v, dtype) for v in doc["__tuple__"])
        if "__list__" in doc and len(doc) == 1:
            return [decode_params(v, dtype) for v in doc["__list__"]]
        if "__namedtuple__" in doc and set(doc) == {"__namedtuple__", "fields"}:
            fields = doc["fields"]
            kind = collections.namedtuple(doc["__namedtuple__"], list(fields))  # type: ignore[misc]
            return kind(*(decode_params(v, dtype) for v in fields.values()))
        return {k: decode_params(v, dtype) for k, v in doc.items()}
    if isinstance(doc, (int, float)) and not math.isfinite(doc):
        raise ValueError(f"a parameter is {doc}")
    return np.asarray(doc, dtype=np.dtype(dtype))
