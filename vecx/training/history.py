"""What a training run produced: its checkpoints, final parameters, and their JSON form.

``History.to_dict()`` is the JSON contract of ``vecx train --json`` and of the ``train``
suite's curves (docs/architecture.md). Parameters are any pytree (``vecx.pytree``); in
JSON an array is a nested list of numbers, a dict an object, and tuples, lists and
namedtuples are tagged (``{"__tuple__": [...]}``) so that they come back as they went.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vecx.pytree import is_namedtuple, leaves

__all__ = ["Checkpoint", "History", "decode_params", "encode_params"]


@dataclass(frozen=True)
class Checkpoint:
    """One evaluation on the whole data set, as passed to ``fit(callback=...)``.

    The callback runs with the clock stopped; ``params()`` copies the parameters reached
    to the host (the structure of ``fit``'s ``params``), to save a checkpoint. Raising in
    the callback stops the run; a ``KeyboardInterrupt`` keeps the history so far.
    """

    step: int
    epoch: int
    examples: int
    loss: float
    time: float  # cumulative training seconds (evaluations excluded)
    total_examples: int
    metrics: Mapping[str, float] = field(default_factory=dict)  # e.g. {"accuracy": 0.97}
    export: Callable[[], Any] | None = field(default=None, repr=False, compare=False)

    def params(self) -> Any:
        """The parameters at this checkpoint, as NumPy arrays."""
        if self.export is None:
            raise ValueError("this checkpoint carries no parameters")
        return self.export()


@dataclass(eq=False)
class History:
    """A training run: one entry per checkpoint in ``examples``, ``losses``, ``times``,
    ``steps`` and each list of ``metrics``, and the parameters where it ended.

    ``accuracy`` is the last value of the metric named ``"accuracy"``, if there is one.
    Two histories compare by identity (their parameters are arrays); compare
    ``to_dict()`` for equal contents.
    """

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
    #: How the steps ran (``eager``, ``jit``, ``fused``; ``vecx.MODES``), None if unknown.
    mode: str | None = None
    #: Seconds the warm-up spent compiling before the clock started (0.0: compiled by an
    #: earlier run in this process; None: nothing compiles), and the compilations the
    #: step had made when the run ended (None in eager mode).
    compile_s: float | None = None
    compiles: int | None = None
    #: The dtype the steps computed in (``float32``; ``bfloat16`` or ``float16`` in mixed
    #: precision), and, with float16's loss scaling, the final scale and the steps skipped
    #: for a non-finite gradient.
    compute_dtype: str | None = None
    loss_scale: float | None = None
    skipped_steps: int | None = None
    #: Data parallelism (``fit(workers=N)``): the workers, their engine (``gloo``,
    #: ``nccl``, ``xla-mesh``) and the CPU threads each computed with; 1, None, None for
    #: one worker.
    workers: int = 1
    engine: str | None = None
    threads_per_worker: int | None = None
    #: A partial run: stopped by Ctrl-C, or the `TrainingDiverged` message. The
    #: checkpoints are those before it; ``params`` are where it stopped, or None if they
    #: are not finite.
    interrupted: bool = False
    diverged: str | None = None
    #: A data-parallel run stopped by a failed worker: the `WorkerFailed` message.
    failed: str | None = None

    @property
    def complete(self) -> bool:
        """Whether the run trained every epoch (not interrupted, not diverged)."""
        return not (self.interrupted or self.diverged or self.failed)

    @property
    def loss(self) -> float | None:
        """The final whole-data loss (the last checkpoint's, for a partial run; None for
        one stopped before its first checkpoint)."""
        return self.losses[-1] if self.losses else None

    @property
    def accuracy(self) -> float | None:
        """The final accuracy, for a task that measures one; else None."""
        values = self.metrics.get("accuracy")
        return values[-1] if values else None

    @property
    def epoch_time(self) -> float | None:
        """Mean training seconds per epoch (checkpoint evaluations excluded); None before
        the first checkpoint."""
        return self.times[-1] / self.epochs if self.times else None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict in the documented field order.

        A partial run adds ``"interrupted": true``, ``"diverged": message`` or
        ``"failed": message`` (a data-parallel worker's); its
        ``loss`` is the last checkpoint's (null without one), ``epoch_time`` is null
        (no whole run to average over) and ``params`` null when they are not finite.
        """
        doc = {
            "preset": self.preset,
            "backend": self.backend,
            "optimizer": self.optimizer,
            "executor": self.executor,
            "mode": self.mode,
            "compile_s": None if self.compile_s is None else float(self.compile_s),
            "compiles": self.compiles,
            "compute_dtype": self.compute_dtype,
            "loss_scale": self.loss_scale,
            "skipped_steps": self.skipped_steps,
            "workers": int(self.workers),
            "engine": self.engine,
            "threads_per_worker": self.threads_per_worker,
            "lr": float(self.lr),
            "batch_size": int(self.batch_size),
            "epochs": int(self.epochs),
            "examples": [int(e) for e in self.examples],
            "losses": [float(v) for v in self.losses],
            "times": [float(t) for t in self.times],
            "steps": [int(k) for k in self.steps],
            "metrics": {k: [_finite_or_none(v) for v in vs] for k, vs in self.metrics.items()},
            "loss": float(self.loss) if self.losses else None,
            "epoch_time": float(self.epoch_time) if self.complete and self.times else None,
            "params": encode_params(self.params) if self.params is not None else None,
            "dtype": _dtype_of(self.params),
        }
        if self.interrupted:
            doc["interrupted"] = True
        if self.diverged:
            doc["diverged"] = self.diverged
        if self.failed:
            doc["failed"] = self.failed
        return doc

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> History:
        """Inverse of :meth:`to_dict` (params in the recorded dtype, float32 by default)."""
        missing = [k for k in ("examples", "losses", "times", "lr", "batch_size", "epochs",
                               "backend") if k not in d]  # fmt: skip
        if missing:
            raise ValueError(f"not a training history: it has no {', '.join(missing)}")
        params = d.get("params")
        return cls(
            examples=list(d["examples"]),
            losses=list(d["losses"]),
            times=list(d["times"]),
            steps=list(d.get("steps") or []),
            params=decode_params(params, d.get("dtype") or "float32") if params else None,
            lr=d["lr"],
            batch_size=d["batch_size"],
            epochs=d["epochs"],
            backend=d["backend"],
            preset=d.get("preset"),
            metrics={k: list(v) for k, v in (d.get("metrics") or {}).items()},
            optimizer=d.get("optimizer", "sgd"),
            executor=d.get("executor", "steps"),
            mode=d.get("mode"),
            compile_s=d.get("compile_s"),
            compiles=d.get("compiles"),
            compute_dtype=d.get("compute_dtype"),
            loss_scale=d.get("loss_scale"),
            skipped_steps=d.get("skipped_steps"),
            workers=int(d.get("workers") or 1),
            engine=d.get("engine"),
            threads_per_worker=d.get("threads_per_worker"),
            interrupted=bool(d.get("interrupted", False)),
            diverged=d.get("diverged"),
            failed=d.get("failed"),
        )


def _finite_or_none(value: Any) -> float | None:
    """A metric value for JSON: nan and inf (a metric that failed) become null."""
    value = float(value)
    return value if math.isfinite(value) else None


def _dtype_of(params: Any) -> str | None:
    found = [np.asarray(leaf).dtype for leaf in leaves(params)] if params is not None else []
    return str(found[0]) if found else None


#: The tags of the JSON form (a dict of exactly these keys is a tagged value).
_TAGS = ({"__tuple__"}, {"__list__"}, {"__namedtuple__", "fields"}, {"__dict__"},
         {"__array__", "shape", "dtype"})  # fmt: skip


def encode_params(tree: Any, dtype: str | None = None) -> Any:
    """``tree`` (a pytree of arrays) as JSON: arrays as nested lists of numbers, dicts as
    objects, tuples, lists and namedtuples tagged. An array whose nested list would not say
    its shape (an empty one) or whose dtype is not ``dtype`` (the tree's first leaf's) is
    tagged with both; a dict with keys JSON cannot hold, or that would read as a tag, is
    stored as its pairs."""
    if dtype is None:
        dtype = _dtype_of(tree)
    if tree is None:
        return None
    if isinstance(tree, dict):
        if all(isinstance(k, str) for k in tree) and set(tree) not in _TAGS:
            return {k: encode_params(v, dtype) for k, v in tree.items()}
        pairs = []
        for k, v in tree.items():
            if k is not None and not isinstance(k, (str, int, float, bool)):
                raise ValueError(f"a parameter dict key {k!r} cannot be written as JSON")
            pairs.append([k, encode_params(v, dtype)])
        return {"__dict__": pairs}
    if is_namedtuple(tree):
        return {"__namedtuple__": type(tree).__name__,
                "fields": {f: encode_params(v, dtype)
                           for f, v in zip(tree._fields, tree, strict=True)}}  # fmt: skip
    if isinstance(tree, tuple):
        return {"__tuple__": [encode_params(v, dtype) for v in tree]}
    if isinstance(tree, list):
        return {"__list__": [encode_params(v, dtype) for v in tree]}
    values = np.asarray(tree)
    if not np.isfinite(values.astype(np.float64)).all():
        raise ValueError("parameters with nan or inf cannot be written as JSON")
    plain = values.astype(np.float64).tolist()
    if values.size == 0 or str(values.dtype) != dtype:
        return {"__array__": plain, "shape": list(values.shape), "dtype": str(values.dtype)}
    return plain


def decode_params(doc: Any, dtype: str = "float32") -> Any:
    """Inverse of :func:`encode_params`; a namedtuple comes back as a namedtuple of the
    same name and fields."""
    if doc is None:
        return None
    if isinstance(doc, dict):
        keys = set(doc)
        if keys == {"__tuple__"}:
            return tuple(decode_params(v, dtype) for v in doc["__tuple__"])
        if keys == {"__list__"}:
            return [decode_params(v, dtype) for v in doc["__list__"]]
        if keys == {"__namedtuple__", "fields"}:
            fields = doc["fields"]
            kind = collections.namedtuple(doc["__namedtuple__"], list(fields))  # type: ignore[misc]
            return kind(*(decode_params(v, dtype) for v in fields.values()))
        if keys == {"__dict__"}:
            return {k: decode_params(v, dtype) for k, v in doc["__dict__"]}
        if keys == {"__array__", "shape", "dtype"}:
            return np.asarray(doc["__array__"], dtype=np.dtype(doc["dtype"])).reshape(
                doc["shape"])
        return {k: decode_params(v, dtype) for k, v in doc.items()}
    if isinstance(doc, (int, float)) and not math.isfinite(doc):
        raise ValueError(f"a parameter is {doc}")
    return np.asarray(doc, dtype=np.dtype(dtype))
