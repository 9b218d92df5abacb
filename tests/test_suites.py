"""Tests of the benchmark suites: fixed case names, sane metrics, correctness checks that bite.

Sizes and timing budgets are shrunk through the suites' keyword arguments so the whole
file runs in seconds; the full-size behaviour differs only in the numbers.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time

import numpy as np
import pytest

import vecx
from vecx.results import RESULT_KEYS, check_record
from vecx.suites import (
    SUITES,
    U_TF32,
    case_key,
    cases,
    plan,
    run_case,
    run_suite,
    tf32_sentinel,
    writer,
    writes_by_copy,
)
from vecx.suites import scaling as scaling_suite

#: measure() settings that keep every case in the millisecond range
FAST = {"min_run_time": 0.002, "max_run_time": 0.01, "min_blocks": 2, "max_blocks": 5,
        "block_time": 0.0005, "warmup": 0}  # fmt: skip

TINY: dict[str, dict] = {
    "vector-add": {"n": 300, "loop_budget_s": 0.005, "timing": FAST},
    "matmul": {"n": 80, "loop_budget_s": 0.005, "timing": FAST},  # 80: last block partial
    "scaling": {"vector_sizes": [256, 4096], "matmul_sizes": [16, 48],
                "low_matmul_sizes": [32], "timing": FAST},
    "train": {"presets": ["linreg", "airfoil-mb100"], "repeats": 1,
              "overrides": {"linreg": {"epochs": 1}, "airfoil-mb100": {"epochs": 1}}},
}  # fmt: skip

EXPECTED_CASES = {
    "vector-add": ["loop", "vectorized"],
    "matmul": ["element", "column", "full", "block64"],
    "scaling": ["vector-add"] * 2 + ["copy"] * 2 + ["matmul"] * 4,
    "train": ["linreg", "airfoil-mb100"],
}


def _available(spec: str) -> bool:
    return vecx.registry.status(spec).available


BACKENDS = [
    "numpy",
    pytest.param("torch:cpu", marks=pytest.mark.skipif(
        not _available("torch:cpu"), reason="torch not available")),
    pytest.param("jax:cpu", marks=pytest.mark.skipif(
        not _available("jax:cpu"), reason="jax not available")),
]  # fmt: skip


@pytest.fixture(scope="module")
def numpy_be():
    return vecx.backend("numpy")


# --------------------------------------------------------------------------- case names, metrics


@pytest.mark.parametrize("spec", BACKENDS)
@pytest.mark.parametrize("suite", list(SUITES))
def test_suite_yields_fixed_cases_with_sane_metrics(suite, spec):
    be = vecx.backend(spec)
    recs = list(run_suite(suite, be, **TINY[suite]))
    assert [r["case"] for r in recs if r["params"].get("impl", "vecx") == "vecx"] == (
        EXPECTED_CASES[suite]
    )
    for rec in recs:
        assert rec["error"] is None, rec["error"]
        assert tuple(rec)[: len(RESULT_KEYS)] == RESULT_KEYS
        assert rec["suite"] == suite and rec["backend"] == be.name and rec["device"] == "cpu"
        assert rec["dtype"] == rec["params"].get("dtype", "float32")
        if rec.get("skipped"):  # NumPy's bfloat16 matmul: the reason, no number
            assert be.name == "numpy" and rec["dtype"] == "bfloat16" and rec["value"] is None
            continue
        assert rec["median_s"] > 0 and rec["iqr_s"] >= 0 and rec["n_runs"] >= 1
        assert math.isfinite(rec["value"]) and rec["value"] > 0
        assert rec["pct_of_ceiling"] is None  # filled by the runner, never by a suite
        json.dumps(rec, allow_nan=False)
    if suite != "train":  # params are the planned identity params, nothing the run chose
        planned = plan(suite, be.spec, **TINY[suite])
        assert [r["params"] for r in recs] == [p for _, p in planned]
    units = {r["case"]: (r["metric"], r["unit"]) for r in recs}
    if suite == "vector-add":
        assert units == {"loop": ("time", "s"), "vectorized": ("time", "s")}
        vec = recs[1]
        assert vec["value"] == vec["min_s"]
    elif suite == "matmul":
        assert set(units.values()) == {("gflops", "GFLOP/s")}
        for rec in recs:  # GFLOP/s is 2 n^3 / time, time being the full-size time
            assert rec["value"] == pytest.approx(2 * 80**3 / rec["min_s"] / 1e9)
    elif suite == "scaling":
        for rec in recs:
            n = rec["params"]["n"]
            if rec.get("skipped"):
                continue
            if rec["case"] == "matmul":
                assert rec["value"] == pytest.approx(2 * n**3 / rec["min_s"] / 1e9)
            else:
                arrays = 3 if rec["case"] == "vector-add" else 2
                assert rec["unit"] == "GB/s"
                assert rec["value"] == pytest.approx(arrays * 4 * n / rec["min_s"] / 1e9)
    elif suite == "train":
        impls = {r["params"]["impl"] for r in recs}
        assert impls == ({"vecx", "native"} if be.name in ("torch", "jax") else {"vecx"})
        for rec in recs:
            assert rec["metric"] == "loss" and rec["agrees"] is None
            curve = rec["curve"]
            assert len(curve["times"]) == len(curve["losses"]) == len(curve["examples"]) >= 2
            assert curve["losses"][-1] == pytest.approx(rec["value"])
            assert rec["params"]["epochs"] == 1 and rec["params"]["overrides"] == {"epochs": 1}


@pytest.mark.parametrize("suite", list(SUITES))
@pytest.mark.parametrize("quick", [False, True])
@pytest.mark.parametrize("spec", ["numpy:cpu", "torch:cpu", "jax:cuda:0", "cupy:cuda:0"])
def test_plan_is_what_cases_run(suite, quick, spec):
    """The runner relies on plan() to know which cases a crashed worker never finished."""
    planned = plan(suite, spec, quick=quick)
    assert planned, "a suite plans at least one case"
    assert len({case_key(suite, c, p) for c, p in planned}) == len(planned)
    if spec == "numpy:cpu":
        be = vecx.backend("numpy")
        built = cases(suite, be, quick=quick)
        assert [(c.case, dict(c.params)) for c in built] == planned


def test_scaling_sizes_by_device_and_quick():
    full_cpu = plan("scaling", "numpy:cpu")
    full_gpu = plan("scaling", "torch:cuda:0")
    quick_cpu = plan("scaling", "numpy:cpu", quick=True)

    def sizes(p, case):
        return [params["n"] for c, params in p if c == case and "dtype" not in params]

    assert sizes(full_cpu, "vector-add") == [2**e for e in range(10, 25)]
    assert sizes(full_gpu, "vector-add")[-1] == 2**28
    assert sizes(full_cpu, "matmul") == [64, 128, 256, 512, 1024, 2048]
    assert sizes(full_gpu, "matmul")[-1] == 8192
    assert max(sizes(quick_cpu, "vector-add")) <= 2**20
    assert max(sizes(quick_cpu, "matmul")) <= 512
    assert sizes(full_cpu, "copy") == sizes(full_cpu, "vector-add")
    be = vecx.backend("numpy")
    copy = cases("scaling", be, vector_sizes=[64], matmul_sizes=[], timing=FAST)[1]
    assert copy.case == "copy" and run_case(copy, be)["note"] == scaling_suite.COPY_NOTE


def test_train_plans_native_only_for_torch_and_jax():
    assert {p["impl"] for _, p in plan("train", "numpy:cpu")} == {"vecx"}
    assert {p["impl"] for _, p in plan("train", "cupy:cuda:0")} == {"vecx"}
    for spec in ("torch:cpu", "jax:cuda:0"):
        assert {p["impl"] for _, p in plan("train", spec)} == {"vecx", "native"}
    names = [c for c, p in plan("train", "numpy:cpu", quick=True)]
    assert names == ["linreg", "airfoil-gd", "airfoil-sgd", "airfoil-mb100", "airfoil-mb10",
                     "digits-softmax", "digits-mlp"]


def test_low_precision_matmuls_are_measured_against_the_float32_ceiling():
    """bfloat16 and float16 matmuls: their own dtype in the record, checked at that
    dtype's bound, a percentage of the float32 ceiling they never set themselves."""
    from vecx.suites.scaling import LOW_DTYPES, add_ceilings

    planned = [p for c, p in plan("scaling", "torch:cuda:0") if "dtype" in p]
    assert [p["dtype"] for p in planned] == ["bfloat16", "bfloat16", "float16", "float16"]
    assert [p["n"] for p in planned] == [4096, 8192, 4096, 8192]
    records = []
    for spec in ("numpy", "torch:cpu", "jax:cpu"):
        if not _available(spec):
            continue
        sizes = {"vector_sizes": [256], "matmul_sizes": [32], "low_matmul_sizes": [32]}
        records += list(run_suite("scaling", vecx.backend(spec), timing=FAST, **sizes))
    low = [r for r in records if "dtype" in r["params"]]
    assert {r["dtype"] for r in low} == set(LOW_DTYPES)
    for rec in low:
        assert rec["error"] is None and rec["dtype"] == rec["params"]["dtype"]
        assert rec.get("skipped") or rec["accumulator"] == "float32"  # on these CPUs
    ceilings = add_ceilings(records)
    full = [r for r in records if r["case"] == "matmul" and "dtype" not in r["params"]]
    trusted = [r["value"] for r in full if not r.get("suspect")]  # a busy machine's: not
    if not trusted:
        assert "gflops" not in ceilings.get("cpu", {})
        return
    assert ceilings["cpu"]["gflops"]["value"] == max(trusted)
    for rec in low:
        if rec.get("value"):
            assert rec["pct_of_ceiling"] == pytest.approx(
                100 * rec["value"] / ceilings["cpu"]["gflops"]["value"])


def test_train_runs_each_preset_in_each_mode_asked_for():
    """--modes makes the mode part of the case's identity; without, one vecx case."""
    planned = plan("train", "jax:cpu", presets=["linreg"], modes=["eager", "jit", "fused"])
    assert [p.get("mode") for _, p in planned] == ["eager", "jit", "fused", None]
    assert [p["impl"] for _, p in planned] == ["vecx", "vecx", "vecx", "native"]
    assert [p.get("mode") for _, p in plan("train", "numpy:cpu", presets=["linreg"])] == [None]


def test_train_records_modes_compile_cost_break_even_and_unsupported(numpy_be):
    """A mode the backend cannot run is skipped with its reason; a compiled one records
    its compile time, and, against eager, after how many steps it paid for it."""
    from vecx.suites.train import SUITE as TRAIN

    records = list(run_suite("train", numpy_be, presets=["linreg"], repeats=1,
                             overrides={"linreg": {"epochs": 1}},
                             modes=["eager", "jit", "fused"]))  # fmt: skip
    eager, jit, fused = records
    assert (eager["mode"], jit["mode"], fused["params"]["mode"]) == ("eager", "jit", "fused")
    assert eager["compile_s"] is None and jit["compile_s"] is not None and jit["compiles"] >= 1
    assert "nothing to fuse" in fused["skipped"] and fused["error"] is None
    assert jit["value"] == pytest.approx(eager["value"], rel=1e-5)
    for rec in records:
        check_record(rec)
    TRAIN.finalize(records)
    saved = (eager["min_s"] - jit["min_s"]) / 100  # linreg: 100 steps an epoch
    if saved > 0:
        assert jit["break_even_steps"] == pytest.approx(max(0, jit["compile_s"] / saved))
    else:
        assert "no faster than eager on linreg" in jit["note"]  # names its preset


def test_train_records_each_compute_dtype_against_float32(numpy_be):
    """--compute-dtypes: each record says its policy, its loss deviation and speed against
    the float32 run; a dtype the backend cannot compute in is skipped with the reason."""
    from vecx.suites.train import SUITE as TRAIN

    records = list(run_suite("train", numpy_be, presets=["airfoil-mb100"], repeats=1,
                             overrides={"airfoil-mb100": {"epochs": 1}},
                             compute_dtypes=["float32", "bfloat16", "float16"]))  # fmt: skip
    full, brain, half = records
    assert [r["params"]["compute_dtype"] for r in records] == ["float32", "bfloat16", "float16"]
    assert "no bfloat16" in brain["skipped"] and brain["compute_dtype"] == "bfloat16"
    assert half["compute_dtype"] == "float16" and half["skipped_steps"] >= 1
    for rec in records:
        check_record(rec)
    assert TRAIN.finalize(records).flagged == 0  # float16 is not held to float32's bound
    assert full["agrees"] is None and half["agrees"] is None  # one record per dtype
    assert half["loss_vs_float32"] == pytest.approx(
        abs(half["value"] - full["value"]) / full["value"])
    assert half["speed_vs_float32"] == pytest.approx(full["min_s"] / half["min_s"])


def test_break_even_compares_with_eager_of_the_same_compute_dtype():
    from vecx.results import result
    from vecx.suites.train import break_even

    def rec(mode, dtype, epoch_s, compile_s):
        return result("train", "linreg", "numpy", "cpu", params={"batch_size": 10},
                      median_s=epoch_s, value=0.5, metric="loss", mode=mode,
                      compute_dtype=dtype, compile_s=compile_s, min_s=epoch_s)  # fmt: skip

    records = [rec("eager", "float32", 0.02, None), rec("jit", "float32", 0.01, 0.1),
               rec("eager", "float16", 0.05, None), rec("jit", "float16", 0.03, 0.1)]
    break_even(records)
    assert records[1]["break_even_steps"] == pytest.approx(0.1 / (0.01 / 100))
    assert records[3]["break_even_steps"] == pytest.approx(0.1 / (0.02 / 100))


def test_an_airfoil_loss_below_the_least_squares_optimum_is_flagged():
    from vecx.results import result
    from vecx.suites.train import AIRFOIL_OPTIMUM, check_optimum

    good = result("train", "airfoil-gd", "numpy", "cpu", params={}, value=0.2443, metric="loss")
    bad = result("train", "airfoil-gd", "torch", "cpu", params={}, value=0.2410, metric="loss")
    assert check_optimum([good, bad]) == 1
    assert bad["agrees"] is False and "below the float64 least-squares optimum" in bad["note"]
    assert good.get("agrees") is None and round(AIRFOIL_OPTIMUM, 6) == 0.241688


def test_quick_train_records_its_overrides(numpy_be):
    (rec,) = run_suite("train", numpy_be, quick=True, presets=["airfoil-mb100"])
    assert rec["error"] is None
    assert rec["params"]["epochs"] == 1 and rec["params"]["overrides"] == {"epochs": 1}
    assert rec["params"]["repeats"] == 1 and rec["params"]["batch_size"] == 100


# --------------------------------------------------------------------------- extrapolation


def test_slow_loop_is_timed_on_a_fraction_and_marked(numpy_be):
    loop, vec = run_suite("vector-add", numpy_be, n=5000, loop_budget_s=1e-5, timing=FAST)
    # how much was measured is a record key; params identify the case only (n)
    assert loop["params"] == {"n": 5000} and vec["params"] == {"n": 5000}
    assert loop["extrapolated"] is True and 32 <= loop["measured_n"] < 5000
    assert vec["extrapolated"] is False and vec["measured_n"] == 5000
    # the reported time is for all n elements: far above the measured fraction's time
    assert loop["median_s"] > vec["median_s"]
    assert loop["write"] == "in-place"


def test_extrapolated_first_call_is_never_scaled(numpy_be):
    # the cold loop over all n is stopped at its deadline: its first call is unknown,
    # not a warm call multiplied by n / measured_n
    loop, _ = run_suite("vector-add", numpy_be, n=5000, loop_budget_s=1e-5, timing=FAST)
    assert loop["extrapolated"] is True
    assert loop["first_call_s"] is None
    assert "first call not recorded" in loop["note"]
    element = run_case(
        cases("matmul", numpy_be, n=64, loop_budget_s=1e-5, timing=FAST)[0], numpy_be
    )
    assert element["extrapolated"] is True and element["first_call_s"] is None
    assert "first call not recorded" in element["note"]


COMPILE_S = 0.05


class CompilesOnFirstRead(np.ndarray):
    """The first scalar read in the process costs COMPILE_S (like a JIT compilation)."""

    compiled = False

    def __getitem__(self, idx):
        if isinstance(idx, int) and not CompilesOnFirstRead.compiled:
            CompilesOnFirstRead.compiled = True
            time.sleep(COMPILE_S)
        return np.asarray(self).__getitem__(idx)


def test_first_call_is_cold_and_comes_before_any_pilot():
    CompilesOnFirstRead.compiled = False
    be = Wrapped(normal=_normal_as(CompilesOnFirstRead))
    loop, vec = run_suite("vector-add", be, n=100, loop_budget_s=10.0, timing=FAST)
    assert loop["error"] is None and loop["extrapolated"] is False
    assert loop["first_call_s"] >= COMPILE_S > loop["median_s"]

    state = {"compiled": False}

    def matmul(self, a, b):
        if a.ndim == 1 and not state["compiled"]:
            state["compiled"] = True
            time.sleep(COMPILE_S)
        return a @ b

    be = Wrapped(matmul=matmul)
    element = run_case(cases("matmul", be, n=16, loop_budget_s=10.0, timing=FAST)[0], be)
    assert element["error"] is None and element["extrapolated"] is False
    assert element["first_call_s"] >= COMPILE_S > element["median_s"]


def test_fast_loop_runs_whole_n(numpy_be):
    loop, _ = run_suite("vector-add", numpy_be, n=100, loop_budget_s=10.0, timing=FAST)
    assert loop["params"] == {"n": 100}
    assert loop["measured_n"] == 100 and loop["extrapolated"] is False
    assert loop["note"] is None


def test_matmul_element_extrapolates_and_says_so(numpy_be):
    element = run_case(
        cases("matmul", numpy_be, n=64, loop_budget_s=1e-5, timing=FAST)[0], numpy_be
    )
    assert element["error"] is None
    assert element["params"] == {"n": 64}
    assert element["extrapolated"] is True
    assert 16 <= element["measured_n"] < 64 * 64
    assert (f"element timed on the first {element['measured_n']:,} of 4,096 dot products, "
            "the time then scaled up to all of them") in element["note"]  # fmt: skip
    assert "measured_n" not in element["note"]  # plain words, not record keys


def test_progress_text_uses_the_tables_time_units():
    from vecx.tables import summary_text

    assert summary_text({"value": 2.5e-6, "unit": "s"}) == "2.50 µs"
    assert summary_text({"value": 0.0123, "unit": "s"}) == "12.3 ms"
    assert summary_text({"value": 12.345, "unit": "GFLOP/s"}) == "12.3 GFLOP/s"
    assert summary_text({"error": "boom"}) == "ERROR boom"


@pytest.mark.skipif(not _available("jax:cpu"), reason="jax not available")
def test_jax_loops_use_at_set_and_say_so():
    be = vecx.backend("jax")
    loop, _ = run_suite("vector-add", be, n=200, loop_budget_s=0.002, timing=FAST)
    assert loop["error"] is None and loop["write"] == "at-set"
    assert "c.at[i].set" in loop["note"]
    column = run_case(cases("matmul", be, n=16, timing=FAST)[1], be)
    assert column["error"] is None and ".at[" in column["note"]


def test_writes_follow_the_declared_capabilities():
    """In place where arrays are mutable; ``x.at[i].set(v)`` where the backend declares
    ``immutable_arrays`` (JAX), without looking at the arrays."""
    be = vecx.backend("numpy")
    assert not writes_by_copy(be)
    x = np.zeros(3, np.float32)
    assert writer(be)(x, 1, 5.0) is x and x[1] == 5.0

    class Functional:  # a stand-in for a JAX array's .at[...].set(...)
        def __init__(self, data):
            self.data = data

        @property
        def at(self):
            parent = self

            class Setter:
                def __getitem__(self, idx):
                    class S:
                        def set(_, value):
                            new = parent.data.copy()
                            new[idx] = value
                            return Functional(new)

                    return S()

            return Setter()

    class Immutable:  # a plugin that declares immutable arrays
        capabilities = vecx.Capabilities(immutable_arrays=True)

    assert writes_by_copy(Immutable())
    f = Functional(np.zeros(3))
    g = writer(Immutable())(f, 2, 7.0)
    assert g is not f and g.data[2] == 7.0 and f.data[2] == 0.0
    assert not writes_by_copy(object())  # declares nothing: the defaults (mutable)


# --------------------------------------------------------------------------- correctness checks


class Wrapped:
    """A numpy backend with one primitive replaced: to prove the suites check results."""

    def __init__(self, **overrides):
        self._be = vecx.backend("numpy")
        self._overrides = overrides

    def __getattr__(self, name):
        if name in self._overrides:
            value = self._overrides[name]
            return value.__get__(self) if callable(value) else value
        return getattr(self._be, name)


def test_wrong_matmul_is_an_error_not_a_result():
    wrong = Wrapped(matmul=lambda self, a, b: a @ b + np.float32(0.05))
    recs = list(run_suite("matmul", wrong, n=32, timing=FAST))
    assert [r["case"] for r in recs] == ["element", "column", "full", "block64"]
    for rec in recs:
        assert rec["error"] and rec["error"].startswith("wrong result"), rec["error"]
        assert rec["value"] is None and rec["median_s"] is None
    scaling = list(run_suite("scaling", wrong, vector_sizes=[], matmul_sizes=[32], timing=FAST))
    assert scaling[0]["error"].startswith("wrong result")


def test_scaling_matmul_check_sees_every_row():
    """Rows are sampled, but Freivalds' test covers the rest: one wrong row is caught."""
    rng = np.random.default_rng(1)
    B = rng.standard_normal((32, 32), dtype=np.float32)
    C = rng.standard_normal((32, 32), dtype=np.float32)
    for row in range(32):
        A = B @ C
        A[row] += np.float32(0.05)
        problem = scaling_suite.check_matmul(A, B, C)
        assert problem and problem.startswith("wrong result"), row


def test_transposed_matmul_is_caught():
    wrong = Wrapped(matmul=lambda self, a, b: (a @ b).T if a.ndim == 2 == b.ndim else a @ b)
    full = run_case(cases("matmul", wrong, n=32, timing=FAST)[2], wrong)
    assert full["error"].startswith("wrong result")


def test_correct_matmul_passes_the_same_checks():
    right = Wrapped(matmul=lambda self, a, b: a @ b)
    recs = list(run_suite("matmul", right, n=32, timing=FAST))
    assert all(r["error"] is None for r in recs)


class OffByOne(np.ndarray):
    """Vectorized ``+`` is wrong; scalar reads (a[i]) are plain NumPy scalars and right."""

    def __add__(self, other):
        return np.asarray(np.add(np.asarray(self), np.asarray(other)) + np.float32(1e-3))


class BadIndex(np.ndarray):
    """``x[i]`` returns a wrong scalar; vectorized arithmetic is right."""

    def __getitem__(self, idx):
        value = np.asarray(self).__getitem__(idx)
        return value + np.float32(1.0) if isinstance(idx, int) else value


class BadNeg(np.ndarray):
    def __neg__(self):
        return np.asarray(self).copy()


def _normal_as(cls):
    def normal(self, mean, std, shape, dtype=None):
        return self._be.normal(mean, std, shape, dtype).view(cls)

    return normal


def test_wrong_vectorized_add_is_caught_loop_still_fine():
    wrong = Wrapped(normal=_normal_as(OffByOne))
    loop, vec = run_suite("vector-add", wrong, n=64, timing=FAST)
    assert loop["error"] is None
    assert vec["error"].startswith("wrong result") and "a + b" in vec["error"]
    rec = next(run_suite("scaling", wrong, vector_sizes=[64], matmul_sizes=[], timing=FAST))
    assert rec["case"] == "vector-add" and rec["error"].startswith("wrong result")


def test_wrong_loop_is_caught():
    wrong = Wrapped(normal=_normal_as(BadIndex))
    loop, vec = run_suite("vector-add", wrong, n=64, timing=FAST)
    assert loop["error"].startswith("wrong result") and vec["error"] is None


def test_wrong_copy_is_caught():
    wrong = Wrapped(normal=_normal_as(BadNeg))
    recs = list(run_suite("scaling", wrong, vector_sizes=[64], matmul_sizes=[], timing=FAST))
    copy = [r for r in recs if r["case"] == "copy"][0]
    assert copy["error"].startswith("wrong result")


def _timed() -> bool:
    """True inside measure()'s timed blocks, which run with the garbage collector paused."""
    import gc

    return not gc.isenabled()


class WrongWhenTimed(np.ndarray):
    """``+`` and ``-x`` are right when called on their own and wrong inside timed blocks:
    a check that recomputes the result after timing sees only right answers."""

    def __add__(self, other):
        out = np.add(np.asarray(self), np.asarray(other))
        return out + np.float32(1e-3) if _timed() else out

    def __neg__(self):
        out = np.negative(np.asarray(self))
        return out + np.float32(1.0) if _timed() else out


def test_checks_look_at_the_timed_output_not_a_recomputation():
    wrong = Wrapped(normal=_normal_as(WrongWhenTimed))
    _, vec = run_suite("vector-add", wrong, n=64, timing=FAST)
    assert vec["error"] and vec["error"].startswith("wrong result"), vec["error"]
    recs = list(run_suite("scaling", wrong, vector_sizes=[64], matmul_sizes=[], timing=FAST))
    assert [r["case"] for r in recs] == ["vector-add", "copy"]
    for rec in recs:
        assert rec["error"] and rec["error"].startswith("wrong result"), rec

    def matmul(self, a, b):
        return a @ b + np.float32(0.5) if _timed() else a @ b

    wrong_mm = Wrapped(matmul=matmul)
    (mm,) = run_suite("scaling", wrong_mm, vector_sizes=[], matmul_sizes=[32], timing=FAST)
    assert mm["error"] and mm["error"].startswith("wrong result"), mm["error"]
    full = run_case(cases("matmul", wrong_mm, n=32, timing=FAST)[2], wrong_mm)
    assert full["error"] and full["error"].startswith("wrong result"), full["error"]


def test_measurement_keeps_the_last_timed_output():
    calls = []

    def fn():
        calls.append(object())
        return calls[-1]

    m = vecx.measure(fn, None, min_run_time=0.001, max_run_time=0.005, warmup=0)
    assert m.output is calls[-1]
    assert "output" not in m.to_dict()


def test_a_failing_case_is_recorded_and_the_suite_goes_on():
    def oom(self, a, b):
        raise MemoryError("out of memory allocating 1 TB")

    recs = list(run_suite("scaling", Wrapped(matmul=oom), vector_sizes=[64], matmul_sizes=[16],
                          timing=FAST))  # fmt: skip
    assert [r["case"] for r in recs] == ["vector-add", "copy", "matmul"]
    assert recs[0]["error"] is None and recs[1]["error"] is None
    assert recs[2]["error"] == "MemoryError: out of memory allocating 1 TB"
    assert recs[2]["params"] == {"n": 16}


def _round_mantissa(x, keep_bits):
    """float32 ``x`` rounded to nearest (ties to even) with ``keep_bits`` mantissa bits:
    10 is TF32, 7 is bfloat16."""
    drop = 23 - keep_bits
    b = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    b = ((b + (1 << (drop - 1)) - 1 + ((b >> drop) & 1)) >> drop) << drop
    return b.astype(np.uint32).view(np.float32)


def _tf32_matmul(self, a, b):
    return _round_mantissa(a, 10) @ _round_mantissa(b, 10)


@pytest.mark.parametrize("n", [1024, 2048])
def test_matmul_check_catches_small_systematic_errors_at_large_n(n):
    """The review's table: with the worst-case n u bound all of these passed at n >= 1024."""
    rng = np.random.default_rng(0)
    B = rng.standard_normal((n, n), dtype=np.float32)
    C = rng.standard_normal((n, n), dtype=np.float32)
    exact = B.astype(np.float64) @ C.astype(np.float64)
    assert scaling_suite.check_matmul(B @ C, B, C) is None  # a real float32 product
    wrong = {
        "1% off": (0.99 * exact).astype(np.float32),
        "TF32 inputs": _round_mantissa(B, 10) @ _round_mantissa(C, 10),
        "bf16 inputs": _round_mantissa(B, 7) @ _round_mantissa(C, 7),
    }
    for what, A in wrong.items():
        problem = scaling_suite.check_matmul(A, B, C)
        assert problem and problem.startswith("wrong result"), what
    # where TF32 was asked for (--precision tf32), TF32 inputs are the right answer
    assert scaling_suite.check_matmul(wrong["TF32 inputs"], B, C, U_TF32) is None


def test_scaling_suite_rejects_a_matmul_one_percent_off_at_n_1024():
    wrong = Wrapped(matmul=lambda self, a, b: (a @ b) * np.float32(0.99))
    (rec,) = run_suite("scaling", wrong, vector_sizes=[], matmul_sizes=[1024], timing=FAST)
    assert rec["error"] and rec["error"].startswith("wrong result"), rec["error"]
    tf32 = Wrapped(matmul=_tf32_matmul)
    (rec,) = run_suite("scaling", tf32, vector_sizes=[], matmul_sizes=[1024], timing=FAST)
    assert rec["error"] and rec["error"].startswith("wrong result"), rec["error"]


def test_tf32_sentinel_is_exact(numpy_be):
    assert tf32_sentinel(numpy_be, 256) is None
    problem = tf32_sentinel(Wrapped(matmul=_tf32_matmul), 256)
    assert problem and "TF32" in problem


def test_tf32_precision_runs_accept_tf32_results():
    tf32 = Wrapped(matmul=_tf32_matmul)
    tf32._overrides["precision"] = "tf32"  # what vecx.backend(..., precision="tf32") sets
    recs = list(run_suite("scaling", tf32, vector_sizes=[], matmul_sizes=[64, 256], timing=FAST))
    assert [r["error"] for r in recs] == [None, None]
    full = run_case(cases("matmul", tf32, n=64, timing=FAST)[2], tf32)
    assert full["error"] is None
    strict = Wrapped(matmul=_tf32_matmul)  # float32 precision: the same results are wrong
    assert run_case(cases("matmul", strict, n=64, timing=FAST)[2], strict)["error"]


def test_unknown_suite_names_the_choices():
    from vecx.suites.suite import load

    with pytest.raises(ValueError, match="unknown suite 'nope'.*vector-add.*workload file"):
        load("nope")
    with pytest.raises(ValueError, match="unknown suite 'no.such.module': no module 'no'"):
        load("no.such.module")


def test_suites_and_runner_import_no_framework():
    code = (
        "import sys, vecx.suites, vecx.suites.vector_add, vecx.suites.matmul, "
        "vecx.suites.scaling, vecx.suites.train, vecx.engine.run, vecx.engine.worker, "
        "vecx.suites.workload, vecx.commands.bench, "
        "vecx.commands.compare\n"
        "print([m for m in ('torch', 'jax', 'cupy') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
