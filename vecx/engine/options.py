"""What a bench run is asked to do, validated before anything runs.

Messages name the option (``backends``, ``suites``), never a command-line flag: the
engine is a library, and ``vecx bench`` maps `OptionError.option` to its flag.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_OUT = "vecx-results"
RESULTS_NAME = "results.json"


class OptionError(ValueError):
    """A bench option with a bad value; ``option`` names it (``"backends"``)."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(message)
        self.option = option


@dataclass
class BenchOptions:
    """What a bench run should do (``vecx bench`` fills it; tests and scripts build it).

    ``backends`` holds names (``torch``: every device kind of torch) or specs
    (``torch:cpu``), ``None`` meaning every known one; ``suites`` names suites as
    :func:`vecx.suites.suite.load` resolves them (built-in, installed, a file, a
    module), ``None`` meaning the built-in ones. ``sizes`` maps a suite name to keyword
    arguments of its ``plan``/``cases`` (tests use it to shrink problems).
    """

    backends: list[str] | None = None
    suites: list[str] | None = None
    quick: bool = False
    out: Path = Path(DEFAULT_OUT)
    precision: str = "float32"
    baseline: str = "numpy"
    quiet: bool = False
    seed: int = 0
    sizes: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Threads of every worker's BLAS pools, torch's intra-op pool and (1 only) XLA's CPU
    #: pool: ``"auto"`` (the CPUs other processes leave idle when each backend starts, see
    #: `vecx.environment.idle_cpus`), a count, or ``None`` (as the environment has them). Recorded.
    threads: int | str | None = "auto"
    #: Seconds one case may run before its worker is killed (with its process group) and
    #: the case recorded as timed out; ``None``: `default_case_timeout` of the timing.
    case_timeout: float | None = None
    #: Execution modes (``vecx.MODES``) of the suites that take them (``Suite.options``):
    #: each of their cases runs once per mode. ``None``: each backend's default mode.
    modes: list[str] | None = None
    #: Compute dtypes of mixed precision (``float32``, ``bfloat16``, ``float16``) of the
    #: suites that take them: each case once per dtype. ``None``: the backend's dtype.
    compute_dtypes: list[str] | None = None


def candidate_specs(selection: Sequence[str] | None) -> list[str]:
    """Specs (``name:kind``) to consider: every known backend x device, or the selection.

    A bare name stands for every device kind of that backend. Raises `OptionError` for
    an empty selection or an unknown name or device (no framework is imported).
    """
    from vecx.registry import all_specs, entries, parse_spec

    known = entries()
    if selection is None:
        return all_specs()
    out: list[str] = []
    for item in selection:
        item = item.strip().lower()
        if not item:
            continue
        try:
            entry, device = parse_spec(item)
        except ValueError as exc:
            raise OptionError("backends", str(exc)) from None
        if ":" not in item:
            out += [f"{entry.name}:{kind}" for kind in entry.devices]
        else:
            out.append(f"{entry.name}:{'cuda' if device == 'cuda:0' else device}")
    if not out:
        raise OptionError(
            "backends", f"no backend selected; choose from {', '.join(known)} "
            "(or leave the selection out for every available backend)",
        )  # fmt: skip
    return list(dict.fromkeys(out))


def check_suites(selection: Sequence[str] | None) -> list[str]:
    """Validated suite selectors in running order (default: every built-in suite).

    Built-in names are case-insensitive (``Matmul``); files and modules are kept as given,
    a file made absolute (workers may run elsewhere). Each is loaded here, so a bad name
    or a broken file is an `OptionError` before anything runs.
    """
    from vecx.suites.suite import BUILTIN, OPT_IN, SuiteError, choices, load

    if selection is None:
        return list(BUILTIN)
    names = [s.strip() for s in selection if s.strip()]
    if not names:
        raise OptionError("suites", f"no suite selected; choose from {choices()}")
    out = []
    for name in names:
        low = name.lower()
        if low in BUILTIN or low in OPT_IN:
            name = low
        elif name.endswith(".py") or "/" in name:
            name = str(Path(name).expanduser().resolve())
        try:
            suite = load(name)
        except SuiteError as exc:
            raise OptionError("suites", str(exc)) from None
        if name in out:
            continue
        clash = next((other for other in out if load(other).name == suite.name), None)
        if clash is not None:  # their records would mix under one name
            raise OptionError("suites", f"{clash} and {name} are both named {suite.name!r}: set "
                              "NAME = '...' in one of them")  # fmt: skip
        out.append(name)
    return out


def check_seed(seed: Any) -> int:
    """The seed as an int >= 0 (it seeds NumPy, PyTorch and JAX generators alike)."""
    from vecx.data import check_int

    try:
        return check_int("seed", seed, 0)
    except (TypeError, ValueError) as exc:
        raise OptionError("seed", str(exc)) from None


def check_threads(threads: Any) -> int | str | None:
    """``"auto"``, a thread count as an int >= 1, or None (as the environment has them)."""
    if threads is None or threads == AUTO:
        return threads
    from vecx.data import check_int

    if isinstance(threads, str) and threads.strip().isdigit():
        threads = int(threads)
    try:
        return check_int("threads", threads, 1)
    except (TypeError, ValueError) as exc:
        raise OptionError("threads", f"{exc} (or {AUTO!r})") from None


def check_case_timeout(seconds: Any) -> float | None:
    """A positive finite number of seconds, or None (the default)."""
    import math

    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not (
            math.isfinite(seconds) and seconds > 0):  # fmt: skip
        raise OptionError("case_timeout", f"case timeout must be a positive number of "
                          f"seconds, got {seconds!r}")  # fmt: skip
    return float(seconds)


def check_modes(modes: Sequence[str] | None) -> list[str] | None:
    """Known, distinct mode names in the order given, or None (the default)."""
    from vecx.protocol import MODES

    return _check_choices("modes", "mode", modes, MODES)


def check_compute_dtypes(dtypes: Sequence[str] | None) -> list[str] | None:
    """Known, distinct compute dtypes in the order given, or None (the default)."""
    return _check_choices("compute_dtypes", "compute dtype", dtypes,
                          ("float32", "bfloat16", "float16"))  # fmt: skip


def _check_choices(option: str, what: str, given: Sequence[str] | None,
                   known: Sequence[str]) -> list[str] | None:  # fmt: skip
    if given is None:
        return None
    names = [str(v).strip().lower() for v in given if str(v).strip()]
    unknown = [v for v in names if v not in known]
    if unknown:
        raise OptionError(option, f"unknown {what} {unknown[0]!r}; choose from {', '.join(known)}")
    if not names:
        raise OptionError(option, f"no {what} selected; choose from {', '.join(known)}")
    return list(dict.fromkeys(names))


def default_case_timeout(quick: bool) -> float:
    """120 s, or 100 x the longest a measurement may take when that is longer: a case
    measures a few times and compiles once; one that runs far past that hangs or spins."""
    from vecx.suites import timing_options

    return max(120.0, 100.0 * float(timing_options(quick)["max_run_time"]))


AUTO = "auto"
#: Seconds the engine watches the machine before each backend (and after the last).
LOAD_SAMPLE_S = 0.1


#: What ``threads=N`` sets in a worker's environment before its framework starts.
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
#: XLA can be held to one CPU thread only (it has no flag for another count).
XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def thread_env(threads: int | None, env: dict[str, str]) -> dict[str, str]:
    """``env`` with ``threads`` applied (unchanged for ``None``)."""
    if threads is None:
        return env
    out = {**env, **{name: str(threads) for name in THREAD_VARS}}
    if threads == 1:
        out["XLA_FLAGS"] = " ".join(f for f in (env.get("XLA_FLAGS", ""), XLA_ONE_THREAD) if f)
    return out


def check_baseline(baseline: str) -> str:
    """The baseline backend as tables match it: a name (``numpy``) or a label
    (``torch:cuda:0``), lower case, the device canonical."""
    from vecx.registry import baseline_label

    try:
        return baseline_label(baseline)
    except ValueError as exc:
        raise OptionError("baseline", str(exc)) from None


def shuffled_order(specs: Sequence[str], seed: int) -> list[str]:
    """The order backends run in: shuffled, so that no backend always runs first (on a
    cold machine) or last (after the others heated it), yet reproducible from ``seed``."""
    order = list(specs)
    random.Random(seed).shuffle(order)
    return order
