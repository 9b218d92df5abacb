"""``@vecx.workload``: a user's own code benchmarked on every backend, checked, presented.

End to end through the CLI (a file, a module, an installed entry point), and in process
for the contract's details (the check, skip, check=None, the version, bad declarations).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import vecx
from vecx.registry import status
from vecx.suites import run_case
from vecx.suites.suite import SuiteError, as_suite, load
from vecx.suites.workload import WorkloadSuite, tolerance, workload

REPO = Path(__file__).resolve().parents[1]
FAST = {"min_run_time": 1e-4, "max_run_time": 0.01, "min_blocks": 2, "max_blocks": 3,
        "block_time": 1e-4, "warmup": 0}  # fmt: skip

#: The README's example and two more: one right everywhere, one wrong on torch only.
BENCH_FILE = '''
import vecx


@vecx.workload(sizes=[16, 64], flops=lambda n: 2 * n**3)
def square_matmul(be, n, rng):
    a = be.asarray(rng.standard_normal((n, n)))
    b = be.asarray(rng.standard_normal((n, n)))
    return lambda: be.matmul(a, b)


@vecx.workload(sizes={"batch": [256, 64, 8]})
def softmax_rows(be, batch, rng):
    x = be.asarray(rng.standard_normal((batch, 10)))
    return lambda: be.exp(x - be.logsumexp(x, axis=1, keepdims=True))


@vecx.workload(sizes=[100], bytes=lambda n: 12 * n)
def wrong_on_torch(be, n, rng):
    a = be.asarray(rng.standard_normal(n))
    b = be.asarray(rng.standard_normal(n))
    if be.name == "torch":
        return lambda: a + b * 1.01  # fast but wrong
    return lambda: a + b
'''


def run_cli(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "vecx", *args], cwd=cwd, env=full,
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


def backends_here() -> str:
    extra = [b for b in ("torch", "jax") if status(f"{b}:cpu").available]
    return ",".join(["numpy", *extra])


def test_a_workload_file_runs_everywhere_with_table_figure_and_report(tmp_path):
    (tmp_path / "mybench.py").write_text(BENCH_FILE)
    proc = run_cli("bench", "--suites", "mybench.py", "--backends", backends_here(), "--quick",
                   "--quiet", "--out", "res", cwd=tmp_path)  # fmt: skip
    torch = "torch" in backends_here()
    assert proc.returncode == (1 if torch else 0), proc.stderr
    doc = json.loads((tmp_path / "res" / "results.json").read_text())
    recs = doc["results"]
    assert {r["suite"] for r in recs} == {"mybench"}
    by = {(r["case"], r["backend"], json.dumps(r["params"])): r for r in recs}
    mm = by[("square_matmul", "numpy", '{"n": 64}')]
    assert mm["unit"] == "GFLOP/s"
    assert mm["value"] == pytest.approx(2 * 64**3 / mm["min_s"] / 1e9)
    assert 0 <= mm["check_error"] <= tolerance("float32") and mm["check"] == "reference"
    assert by[("softmax_rows", "numpy", '{"batch": 8}')]["unit"] == "s"
    assert by[("wrong_on_torch", "numpy", '{"n": 100}')]["error"] is None
    if torch:  # wrong there, right elsewhere
        bad = by[("wrong_on_torch", "torch", '{"n": 100}')]
        assert bad["error"].startswith("wrong result: wrong_on_torch differs from the NumPy")
        assert bad["value"] is None and bad["check_error"] > tolerance("float32")
        assert by[("square_matmul", "torch", '{"n": 64}')]["error"] is None
    versions = {r["suite_version"] for r in recs if r["case"] == "square_matmul"}
    assert len(versions) == 1 and versions != {"1"}  # a hash of its source
    # the table: sizes sorted as numbers, each figure once (no "value" column of times)
    table = proc.stdout[proc.stdout.index("mybench\n"):]
    cells = [[c.strip() for c in ln.split("|")] for ln in table.splitlines()]
    rows = [c for c in cells if c[1:3] == ["softmax_rows", "numpy:cpu"]]
    assert [r[4] for r in rows] == ["8", "64", "256"]
    assert "GFLOP/s" in table and "error vs float64" in table
    assert (tmp_path / "res" / "mybench.png").is_file()  # the generic figure
    report = run_cli("report", "res/results.json", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert "![mybench: each case against size" in report.stdout
    plot = run_cli("plot", "res/results.json", "--out", "figs", cwd=tmp_path)
    assert plot.returncode == 0 and (tmp_path / "figs" / "mybench.png").is_file(), plot.stderr


def test_a_module_in_the_current_folder_and_an_installed_suite(tmp_path):
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "bench.py").write_text(BENCH_FILE)
    # the console script leaves the current folder off sys.path: vecx adds it for suites
    exe = Path(sys.executable).with_name("vecx")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "vecx"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1"}
    proc = subprocess.run([*cmd, "bench", "--suites", "mypkg.bench", "--backends", "numpy",
                           "--quick", "--quiet", "--out", "res", "--no-plots"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    recs = json.loads((tmp_path / "res" / "results.json").read_text())["results"]
    assert {r["suite"] for r in recs} == {"mypkg.bench"} and len(recs) == 6

    site = tmp_path / "site"
    site.mkdir()
    (site / "myplug.py").write_text(BENCH_FILE)
    dist = site / "myplug-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: myplug\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[vecx.suites]\nmyplug = myplug\n")
    env = {"PYTHONPATH": os.pathsep.join([str(REPO), str(site)])}
    helptext = run_cli("bench", "--help", cwd=tmp_path, env=env)
    assert "installed: myplug" in helptext.stdout
    proc = run_cli("bench", "--suites", "myplug", "--backends", "numpy", "--quick", "--quiet",
                   "--out", "plug", "--no-plots", cwd=tmp_path, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    recs = json.loads((tmp_path / "plug" / "results.json").read_text())["results"]
    assert {r["suite"] for r in recs} == {"myplug"}


def test_a_broken_file_is_one_line_with_its_file_and_line(tmp_path):
    (tmp_path / "broken.py").write_text("import vecx\n\nx = 1\nraise RuntimeError('oops')\n")
    proc = run_cli("bench", "--suites", "broken.py", "--out", "res", cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{tmp_path / 'broken.py'}:4: RuntimeError: oops" in lines[0]
    (tmp_path / "typo.py").write_text("def f(:\n")
    proc = run_cli("bench", "--suites", "typo.py", "--out", "res", cwd=tmp_path)
    assert proc.returncode == 2 and "typo.py:1: SyntaxError" in proc.stderr
    (tmp_path / "empty.py").write_text("import vecx\n")
    proc = run_cli("bench", "--suites", "empty.py", "--out", "res", cwd=tmp_path)
    assert proc.returncode == 2 and "defines no workload" in proc.stderr
    proc = run_cli("bench", "--suites", "mlpbench", "--out", "res", cwd=tmp_path)
    assert proc.returncode == 2 and "a workload file (mybench.py) or module" in proc.stderr
    assert not (tmp_path / "res").exists()


# --------------------------------------------------------------------------- in process


def suite_of(*workloads) -> WorkloadSuite:
    return WorkloadSuite("t", workloads, source=None)


def records(suite: WorkloadSuite, be, quick: bool = False) -> list[dict]:
    return [run_case(c, be) for c in suite.cases(be, quick=quick, timing=FAST)]


def test_same_data_on_every_backend_and_the_check_catches_a_wrong_result():
    seen = []

    @workload(sizes=[5])
    def draw(be, n, rng):
        x = rng.standard_normal(n)
        seen.append(x)
        return lambda: be.asarray(x) * 2.0

    @workload(sizes=[50])
    def off_by_a_little(be, n, rng):
        x = be.asarray(rng.standard_normal(n))
        wrong = be.dtype == "float32"  # the reference runs in float64
        return lambda: x * (1.01 if wrong else 1.0)

    be = vecx.backend("numpy")
    ok, bad = records(suite_of(draw, off_by_a_little), be)
    np.testing.assert_array_equal(seen[0], seen[1])  # the run and its reference: same data
    assert ok["error"] is None and ok["check_error"] < 1e-7
    assert bad["error"].startswith("wrong result: off_by_a_little differs") and bad["value"] is None


def test_a_raising_workload_is_recorded_and_the_others_run(tmp_path):
    path = tmp_path / "raising.py"
    path.write_text(textwrap.dedent('''
        import vecx

        @vecx.workload(sizes=[4])
        def boom(be, n, rng):
            x = be.ones(n)
            return lambda: x.no_such_method()

        @vecx.workload(sizes=[4])
        def fine(be, n, rng):
            x = be.ones(n)
            return lambda: x + 1
    '''))
    recs = records(load(str(path)), vecx.backend("numpy"))
    assert recs[0]["error"].startswith("AttributeError") and f"{path}:" in recs[0]["error"]
    assert recs[1]["error"] is None


def test_skip_check_none_custom_check_quick_sizes_and_dtype():
    @workload(sizes=[8, 16], quick_sizes=[8], skip={"numpy": "not for numpy"})
    def skipped(be, n, rng):
        raise AssertionError("never set up")

    @workload(sizes=[8], check=None)
    def unchecked(be, n, rng):
        return lambda: be.normal(0.0, 1.0, n)  # the backend's own draws: legitimately differ

    @workload(sizes=[8], check=lambda got, ref: "always wrong")
    def custom(be, n, rng):
        return lambda: be.ones(n)

    @workload(sizes=[8], dtype="float64")
    def in_float64(be, n, rng):
        x = be.asarray(rng.standard_normal(n))
        return lambda: x * x

    @workload(sizes=[8])
    def returns_nothing(be, n, rng):
        x = be.ones(n)
        return lambda: None if x is None else None

    be = vecx.backend("numpy")
    s = suite_of(skipped, unchecked, custom, in_float64, returns_nothing)
    assert [c for c, _ in s.plan("numpy:cpu", quick=True)] == [
        "skipped", "unchecked", "custom", "in_float64", "returns_nothing"]  # fmt: skip
    skip, unchecked_rec, custom_rec, f64, nothing = records(s, be, quick=True)
    # nothing returned, nothing compared: not "checked against the reference, error 0"
    assert nothing["check"] == "none" and nothing.get("check_error") is None
    assert "returns no array" in nothing["note"] and nothing["error"] is None
    assert skip["skipped"] == "not for numpy" and skip["error"] is None and skip["median_s"] is None
    assert unchecked_rec["check"] == "none" and "not checked" in unchecked_rec["note"]
    assert custom_rec["error"] == "wrong result: custom: always wrong"
    assert f64["dtype"] == "float64" and f64["check_error"] <= tolerance("float64")


def test_bad_declarations_name_the_workload():
    def f(be, n, rng):
        return lambda: None

    with pytest.raises(ValueError, match="workload f: sizes= is empty"):
        workload(sizes=[])(f)
    with pytest.raises(TypeError, match="workload g: sizes= holds"):
        workload(sizes=[[1, 2]], name="g")(lambda be, n, rng: None)
    with pytest.raises(ValueError, match="flops= or bytes=, not both"):
        workload(sizes=[1], flops=len, bytes=len)(lambda be, n, rng: None)
    with pytest.raises(ValueError, match="unknown dtype 'float8'"):
        workload(sizes=[1], dtype="float8")(lambda be, n, rng: None)

    @workload(sizes=[1])
    def returns_a_value(be, n, rng):
        return be.ones(n)  # not a function to time

    rec = records(suite_of(returns_a_value), vecx.backend("numpy"))[0]
    assert "must return the call to time" in rec["error"]


def test_as_suite_refuses_what_is_not_a_suite():
    import types

    with pytest.raises(SuiteError, match="defines no workload"):
        as_suite(types.ModuleType("nothing"), "nothing")
    with pytest.raises(SuiteError, match="is a int"):
        as_suite(3, "three")


def test_the_decorated_function_stays_callable():
    @workload(sizes=[3])
    def add(be, n, rng):
        x = be.ones(n)
        return lambda: x + x

    call = add(vecx.backend("numpy"), 3, np.random.default_rng(0))
    np.testing.assert_array_equal(call(), np.full(3, 2.0, np.float32))


def test_two_suites_or_workloads_of_one_name_are_an_error(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "w.py").write_text(BENCH_FILE)
    proc = run_cli("bench", "--suites", "a/w.py,b/w.py", "--out", "res", cwd=tmp_path)
    assert proc.returncode == 2 and "are both named 'w': set NAME" in proc.stderr
    twice = BENCH_FILE + "\n\n@vecx.workload(sizes=[4], name='square_matmul')\n" + (
        "def again(be, n, rng):\n    return lambda: be.ones(n)\n")
    (tmp_path / "twice.py").write_text(twice)
    proc = run_cli("bench", "--suites", "twice.py", "--out", "res", cwd=tmp_path)
    assert proc.returncode == 2 and "two workloads are named 'square_matmul'" in proc.stderr
    (tmp_path / "typo.py").write_text(BENCH_FILE)
    proc = run_cli("bench", "--suites", "typo", "--out", "res", cwd=tmp_path)
    assert proc.returncode == 2 and "did you mean typo.py?" in proc.stderr
    proc = run_cli("bench", "--suites", "a", "--out", "res", cwd=tmp_path)
    assert proc.returncode == 2 and "unknown suite 'a'" in proc.stderr
    proc = run_cli("bench", "--suites", "a/", "--out", "res", cwd=tmp_path)
    assert proc.returncode == 2 and "is a folder" in proc.stderr


def test_a_vecx_folder_in_the_current_folder_does_not_replace_the_workers_vecx(tmp_path):
    (tmp_path / "vecx").mkdir()
    (tmp_path / "vecx" / "__init__.py").write_text("raise ImportError('the wrong vecx')\n")
    (tmp_path / "mybench.py").write_text(BENCH_FILE)
    exe = Path(sys.executable).with_name("vecx")
    if not exe.exists():
        pytest.skip("no vecx console script in this environment")
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1"}
    proc = subprocess.run([str(exe), "bench", "--suites", "mybench.py", "--backends", "numpy",
                           "--quick", "--quiet", "--out", "res", "--no-plots"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    if sys.version_info < (3, 11):
        return
    recs = json.loads((tmp_path / "res" / "results.json").read_text())["results"]
    assert len(recs) == 6 and all(r["error"] is None for r in recs)


def test_declarations_are_checked_at_import():
    def f(be, n, rng):
        return lambda: None

    with pytest.raises(ValueError, match="skip= names unknown backend 'jaxx'"):
        workload(sizes=[1], skip={"jaxx": "typo"})(f)
    with pytest.raises(TypeError, match=r"flops= fails for \{'n': 1\}: TypeError"):
        workload(sizes=[1], flops=lambda n, m: n * m)(f)
    with pytest.raises(ValueError, match="bytes= gives 0.0"):
        workload(sizes=[1], bytes=lambda n: 0)(f)


def test_nan_and_infinity_are_checked_both_ways():
    @workload(sizes=[4])
    def all_nan(be, n, rng):
        return lambda: be.asarray(np.full(n, np.nan))

    @workload(sizes=[4])
    def finite_where_reference_is_not(be, n, rng):
        x = be.asarray(np.array([-1.0, 1.0, 2.0, 3.0]))
        # the float64 reference takes the log of -1 (NaN); the float32 run of |x|
        return lambda: be.log(be.abs(x)) if be.dtype == "float32" else be.log(x)

    @workload(sizes=[4])
    def nan_where_the_reference_has_it(be, n, rng):
        x = be.asarray(np.array([np.nan, 1.0, 2.0, 3.0]))
        return lambda: x * 2.0

    be = vecx.backend("numpy")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # log(-1)
        a, b, c = records(suite_of(all_nan, finite_where_reference_is_not,
                                   nan_where_the_reference_has_it), be)  # fmt: skip
    assert "is all NaN or infinite" in a["error"]
    assert "is finite where the NumPy float64 reference is not" in b["error"]
    assert c["error"] is None


def test_a_dtype_the_backend_cannot_run_is_skipped_with_its_reason(monkeypatch):
    if not status("jax:cpu").available:
        pytest.skip("jax is not installed")
    monkeypatch.delenv("JAX_ENABLE_X64", raising=False)
    code = (
        "import vecx, json; from vecx.suites import run_case\n"
        "from vecx.suites.workload import WorkloadSuite, workload\n"
        "@workload(sizes=[4], dtype='float64')\n"
        "def f(be, n, rng):\n    x = be.ones(n)\n    return lambda: x + x\n"
        "s = WorkloadSuite('t', [f], None); be = vecx.backend('jax')\n"
        "print(json.dumps(run_case(s.cases(be)[0], be)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rec = json.loads(proc.stdout.splitlines()[-1])
    assert rec["error"] is None and "64-bit mode" in rec["skipped"]
