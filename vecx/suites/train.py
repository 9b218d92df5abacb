"""``train``: the trainer's presets, with vecx's trainer and the framework-native way.

One case per preset (``linreg``, ``airfoil-gd``, ``airfoil-sgd``, ``airfoil-mb100``,
``airfoil-mb10``, ``digits-softmax``, ``digits-mlp``) and implementation: ``impl =
"vecx"`` is :func:`vecx.train` (written once against the Backend protocol) on every
backend; ``impl = "native"`` is the same run with the framework-native executor
(``vecx.native``: PyTorch ``nn`` + ``torch.optim.SGD``, a ``jax.jit`` step from
``jax.grad``) on the same data, initial parameters and minibatches, for torch and jax.

* ``median_s``: training seconds per epoch (the trainer's clock, synchronised, excluding
  the whole-data loss evaluations and, with its warm-up, JAX's compilation), the median
  over ``repeats`` runs (3 in a full run, 1 with ``--quick``); ``iqr_s`` their spread.
* ``value``: the final whole-data loss; ``curve``: the loss against training time (and
  ``accuracies`` for a classification preset, whose record also has ``accuracy``, the
  final training accuracy).
* ``agrees`` is set by the runner once every backend has run
  (``vecx.runner.check_agreement``): a final loss that disagrees with the others is a
  wrong result, however fast.

``--quick`` keeps every preset's name and hyperparameters but runs fewer epochs; the
override is recorded in ``params["overrides"]`` so a quick record never passes for a
full one (and the params differ, so ``vecx compare`` never matches the two).
"""

from __future__ import annotations

import importlib.util
import statistics
from collections.abc import Iterator
from typing import Any

from vecx.suites import Case, spec_name, timed
from vecx.timing import Measurement

NAME = "train"
#: Backends with a framework-native reference trainer in ``vecx.native``.
NATIVE = ("torch", "jax")
#: Fewer epochs in quick runs (GD's ten full-batch epochs cost next to nothing: kept).
QUICK_OVERRIDES: dict[str, dict[str, Any]] = {
    "linreg": {"epochs": 1},
    "airfoil-sgd": {"epochs": 1},
    "airfoil-mb100": {"epochs": 1},
    "airfoil-mb10": {"epochs": 1},
    "digits-softmax": {"epochs": 2},
    "digits-mlp": {"epochs": 2},
}
NATIVE_NOTES = {
    "torch": "native: nn modules + torch.optim.SGD, loss.backward()",
    "jax": "native: jax.jit step built from jax.grad",
}
REPEATS = 3
REPEATS_QUICK = 1


def _presets() -> list[str]:
    from vecx.training import PRESETS

    return list(PRESETS)


def _has_native() -> bool:
    return importlib.util.find_spec("vecx.native") is not None


def plan(
    device: str,
    *,
    quick: bool = False,
    presets: list[str] | None = None,
    native: bool = True,
    **_: Any,
) -> list[tuple]:
    """Every preset with ``impl = "vecx"``; torch and jax also with ``impl = "native"``."""
    names = presets if presets is not None else _presets()
    impls = ["vecx"]
    if native and spec_name(device) in NATIVE and _has_native():
        impls.append("native")
    return [(p, {"preset": p, "impl": impl}) for p in names for impl in impls]


def cases(
    be: Any,
    *,
    quick: bool = False,
    presets: list[str] | None = None,
    native: bool = True,
    overrides: dict[str, dict[str, Any]] | None = None,
    repeats: int | None = None,
    seed: int = 0,
) -> list[Case]:
    """The planned cases on ``be``; ``overrides`` (per preset) and ``repeats`` for tests.

    ``seed`` fixes the synthetic data, initial parameters and minibatch order (host
    generators in ``vecx.data``), identical on every backend.
    """
    from vecx.training import PRESETS, train

    extra = overrides if overrides is not None else (QUICK_OVERRIDES if quick else {})
    runs = repeats if repeats is not None else (REPEATS_QUICK if quick else REPEATS)

    def run(preset: str, impl: str) -> dict[str, Any]:
        p = PRESETS[preset]
        over = dict(extra.get(preset, {}))
        hyper = {"lr": p.lr, "batch_size": p.batch_size, "epochs": p.epochs, **over}
        histories = [
            train(be, preset, seed=seed, executor="native" if impl == "native" else None,
                  **over)
            for _ in range(runs)
        ]  # fmt: skip
        times = [h.epoch_time for h in histories]
        median = statistics.median(times)
        h = min(histories, key=lambda x: abs(x.epoch_time - median))
        meas = Measurement(tuple(times), 1, 0.0, f"train {preset} {impl}")
        params = {"preset": preset, "impl": impl, **hyper, "overrides": over, "repeats": runs}
        curve = {"times": h.times, "losses": h.losses, "examples": h.examples}
        scores = {}
        if h.accuracy is not None:
            curve["accuracies"] = h.metrics["accuracy"]
            scores["accuracy"] = h.accuracy
        rec = timed(
            NAME, preset, be, meas, params=params, metric="loss", value=float(h.loss), unit="",
            curve=curve, agrees=None,
            note=NATIVE_NOTES.get(be.name) if impl == "native" else None,
            first_call_s=None,  # the trainer warms up (compiles) before its clock starts
            **scores,
        )  # fmt: skip
        rec["median_s"] = median  # seconds per epoch, over the runs
        return rec

    return [
        Case(NAME, case, params, lambda p=params["preset"], i=params["impl"]: run(p, i))
        for case, params in plan(be.spec, quick=quick, presets=presets, native=native)
    ]


def run_train(be: Any, *, quick: bool = False, **sizes: Any) -> Iterator[dict[str, Any]]:
    """Records of every preset (and native implementation) on ``be``."""
    from vecx.suites import run_suite

    yield from run_suite(NAME, be, quick=quick, **sizes)
