"""d2l's experiments as presets: a task, its data and its hyperparameters, by name."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from vecx.data import AIRFOIL_ROWS, DIGITS_ROWS, load_airfoil, load_digits, synthetic_data
from vecx.protocol import Backend
from vecx.training.history import History
from vecx.training.loop import fit

__all__ = ["OVERRIDES", "PRESETS", "Preset", "train"]


@dataclass(frozen=True)
class Preset:
    """One experiment: its task, data and hyperparameters, and the loss d2l reports."""

    name: str
    task: str  # a name in vecx.training.tasks.TASKS
    data: str  # "synthetic", "airfoil" or "digits"
    lr: float
    batch_size: int
    epochs: int
    description: str
    d2l_loss: float | None = None  # the book's final loss, where the book has the experiment
    optimizer: str = "sgd"

    @property
    def examples(self) -> int:
        """Rows of the preset's data (the largest batch size it allows)."""
        return {"synthetic": 1000, "airfoil": 1500, "digits": DIGITS_ROWS}[self.data]

    @property
    def classification(self) -> bool:
        """Whether the task reports an accuracy beside its loss."""
        return self.data == "digits"

    def load(self, be: Backend, seed: int = 0) -> tuple[Any, Any]:
        """The preset's data on ``be``."""
        if self.data == "synthetic":
            return synthetic_data(be, [2.0, -3.4], 4.2, self.examples, seed=seed)
        if self.data == "digits":
            return load_digits(be, self.examples)
        return load_airfoil(be, min(self.examples, AIRFOIL_ROWS))


#: The experiments by name (read-only). ``d2l_loss`` is the book's final loss.
PRESETS: Mapping[str, Preset] = MappingProxyType({
    p.name: p
    for p in (
        Preset("linreg", "linreg", "synthetic", 0.03, 10, 3,
               "linear regression from scratch: w=[2,-3.4], b=4.2, n=1000", 5e-5),
        Preset("airfoil-gd", "linreg", "airfoil", 1.0, 1500, 10,
               "airfoil, full-batch gradient descent", 0.247),
        Preset("airfoil-sgd", "linreg", "airfoil", 0.005, 1, 2,
               "airfoil, stochastic gradient descent (batch 1)", 0.245),
        Preset("airfoil-mb100", "linreg", "airfoil", 0.4, 100, 2,
               "airfoil, minibatch SGD, batch 100", 0.246),
        Preset("airfoil-mb10", "linreg", "airfoil", 0.05, 10, 2,
               "airfoil, minibatch SGD, batch 10", 0.246),
        Preset("digits-softmax", "softmax", "digits", 1.0, 64, 10,
               "handwritten digits (8x8), softmax regression, batch 64"),
        Preset("digits-mlp", "mlp", "digits", 0.2, 64, 10,
               "handwritten digits (8x8), one hidden ReLU layer of 64, batch 64"),
    )
})  # fmt: skip

#: What ``train`` lets a caller change (as in ``fit``).
OVERRIDES = ("lr", "batch_size", "epochs", "seed", "replacement", "log_every", "callback",
             "optimizer", "executor", "mode", "compute_dtype", "workers")  # fmt: skip


def train(be: Backend, preset: str, **overrides: Any) -> History | None:
    """Run a preset (see ``PRESETS``) on ``be``, with the preset's task and data.

    Keyword overrides (see `OVERRIDES`: ``lr``, ``batch_size``, ``epochs``, ``seed``,
    ``replacement``, ``log_every``, ``callback``, ``optimizer``, ``executor``, ``mode``,
    ``compute_dtype``, ``workers``) mean what
    they mean in :func:`vecx.fit`; ``seed`` (default 0) also fixes the synthetic data of
    ``linreg``. For another model, loss or metrics, call :func:`vecx.fit`.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    unknown = sorted(set(overrides) - set(OVERRIDES))
    if unknown:
        raise ValueError(
            f"unknown override(s) {', '.join(unknown)} for train(); "
            f"allowed: {', '.join(OVERRIDES)}"
        )
    p = PRESETS[preset]
    kwargs: dict[str, Any] = {"lr": p.lr, "batch_size": p.batch_size, "epochs": p.epochs,
                              "optimizer": p.optimizer}  # fmt: skip
    kwargs.update({k: v for k, v in overrides.items() if v is not None})
    X, y = p.load(be, seed=kwargs.get("seed", 0))
    return fit(be, X, y, task=p.task, preset=preset, **kwargs)
