"""Tests of ``vecx compare``: verdicts beyond noise, exit codes, bad files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vecx.cli import main
from vecx.results import ResultWriter, result

ROOT = Path(__file__).resolve().parent.parent


def _doc(path: Path, records: list[dict], settings: dict | None = None,
         machine: dict | None = None) -> Path:
    w = ResultWriter(path)
    for rec in records:
        w.add(rec)
    w.finish({"settings": settings or {}, **({"machine": machine} if machine else {})})
    return path


def _rec(case, median, iqr=0.0, error=None, **extra):
    return result("matmul", case, "numpy", "cpu", params={"n": 256},
                  median_s=None if error else median, iqr_s=None if error else iqr,
                  error=error, **extra)  # fmt: skip


@pytest.fixture
def docs(tmp_path):
    old = _doc(tmp_path / "old.json", [
        _rec("full", 1.0, 0.01),                  # -> 1.5: regression
        _rec("column", 1.0, 0.01),                # -> 0.5: improvement
        _rec("block64", 1.0, 0.3),                # -> 1.5 but noisy: same
        _rec("element", 1.0, measured_n=79, extrapolated=True),  # run-chosen keys differ
        _rec("gone", 1.0),
        _rec("broken", 1.0),
    ])  # fmt: skip
    new = _doc(tmp_path / "new.json", [
        _rec("full", 1.5, 0.01),
        _rec("column", 0.5, 0.01),
        _rec("block64", 1.5, 0.3),
        _rec("element", 1.02, measured_n=81, extrapolated=True),
        _rec("added", 1.0),
        _rec("broken", None, error="MemoryError"),
    ])  # fmt: skip
    return old, new


def test_table_and_verdicts(docs, capsys):
    old, new = docs
    assert main(["compare", str(old), str(new)]) == 0
    out = capsys.readouterr().out
    rows = {line.split("|")[2].strip(): line for line in out.splitlines() if line.count("|") > 8}
    assert "REGRESSION" in rows["full"] and "1.5x" in rows["full"]
    assert "improvement" in rows["column"] and "0.5x" in rows["column"]
    assert "same" in rows["block64"]
    assert "same" in rows["element"]  # matched although measured_n differs
    assert "only-old" in rows["gone"] and "only-new" in rows["added"]
    assert "error" in rows["broken"]
    assert ("7 cases: 1 regression, 1 improvement, 1 error, 2 same, 1 only-old, 1 only-new"
            in out)  # fmt: skip


def test_runs_with_different_settings_get_a_one_line_warning(tmp_path, capsys):
    base = {"quick": False, "precision": "float32", "dtype": "float32"}
    cpu = {"cpu": "CPU A", "gpu": None}
    old = _doc(tmp_path / "old.json", [_rec("full", 1.0)], base, cpu)
    same = _doc(tmp_path / "same.json", [_rec("full", 1.0)], base, cpu)
    assert main(["compare", str(old), str(same)]) == 0
    assert capsys.readouterr().err == ""
    new = _doc(tmp_path / "new.json", [_rec("full", 1.0)], {**base, "quick": True},
               {"cpu": "CPU B", "gpu": "NVIDIA H100"})  # fmt: skip
    assert main(["compare", str(old), str(new)]) == 0
    assert capsys.readouterr().err == (
        "vecx compare: warning: the runs differ in quick (no -> yes), machine cpu "
        "(CPU A -> CPU B), machine gpu (none -> NVIDIA H100); the comparison may not be "
        "meaningful\n"
    )
    # a setting one file does not record is no difference
    bare = _doc(tmp_path / "bare.json", [_rec("full", 1.0)], {"dtype": "float32"}, cpu)
    assert main(["compare", str(old), str(bare)]) == 0
    assert capsys.readouterr().err == ""


def test_older_files_with_measured_n_in_params_still_match(tmp_path, capsys):
    """Files of earlier development versions kept measured_n/extrapolated in params."""
    def legacy(median, measured_n):
        rec = _rec("element", median)
        rec["params"] = {"n": 256, "measured_n": measured_n, "extrapolated": True}
        return rec

    old = _doc(tmp_path / "old.json", [legacy(1.0, 79)])
    new = _doc(tmp_path / "new.json", [_rec("element", 1.01, measured_n=81, extrapolated=True)])
    assert main(["compare", str(old), str(new)]) == 0
    out = capsys.readouterr().out
    assert "1 cases: 1 same" in out


def test_fail_on_regression_exits_1(docs, capsys):
    old, new = docs
    assert main(["compare", str(old), str(new), "--fail-on-regression"]) == 1
    assert "1 regression(s) beyond noise" in capsys.readouterr().err
    assert main(["compare", str(old), str(old), "--fail-on-regression"]) == 0


def test_threshold_decides(docs, capsys):
    old, new = docs
    # a 50% slowdown is no regression when only changes above 60% count
    assert main(["compare", str(old), str(new), "--threshold", "0.6",
                 "--fail-on-regression"]) == 0  # fmt: skip


def test_changes_only(docs, capsys):
    old, new = docs
    main(["compare", str(old), str(new), "--changes-only"])
    out = capsys.readouterr().out
    assert "full" in out and "column" in out and "broken" in out
    assert "block64" not in out and "only-old" not in out.split("vecx compare: 7")[0]


def _cli(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "vecx", "compare", *args], capture_output=True,
                          text=True, cwd=ROOT, env=env)  # fmt: skip


def test_missing_and_malformed_files_are_one_line_exit_2(tmp_path, docs):
    old, _ = docs
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"hello": 1}))
    for args, message in [
        ((str(tmp_path / "none.json"), str(old)), "does not exist"),
        ((str(old), str(bad)), "is not valid JSON: line 1 column 2"),
        ((str(old), str(wrong)), "is not a vecx results file"),
        ((str(old), str(old), "--threshold", "-1"), "--threshold must be"),
    ]:
        proc = _cli(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
        assert proc.stderr.startswith("vecx compare: error:")


def test_help_documents_the_rule():
    proc = _cli("--help")
    assert proc.returncode == 0
    assert "--fail-on-regression" in proc.stdout and "IQR" in proc.stdout
    assert "--threshold" in proc.stdout


def test_compare_two_real_runs(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    paths = []
    for name in ("a", "b"):
        out = tmp_path / name
        proc = subprocess.run(
            [sys.executable, "-m", "vecx", "bench", "--quick", "--backends", "numpy",
             "--suites", "vector-add,matmul", "--out", str(out), "--no-plots", "--quiet"],
            capture_output=True, text=True, cwd=ROOT, env=env,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        paths.append(out / "results.json")
    proc = _cli(str(paths[0]), str(paths[1]))
    assert proc.returncode == 0, proc.stderr
    assert "only-old" not in proc.stdout and "only-new" not in proc.stdout  # every case matched
    assert "vecx compare: 6 cases:" in proc.stdout


def test_a_changed_suite_version_is_not_compared(tmp_path):
    from vecx.results import compare

    def doc(version, median):
        return {"results": [result("mine", "f", "numpy", "cpu", params={"n": 1}, median_s=median,
                                   iqr_s=0.0, suite_version=version)]}  # fmt: skip

    assert compare(doc("abc", 1.0), doc("abc", 2.0))[0].verdict == "regression"
    changed = compare(doc("abc", 1.0), doc("def", 2.0))[0]
    assert changed.verdict == "changed" and changed.ratio is None
    old = {"results": [result("mine", "f", "numpy", "cpu", params={"n": 1}, median_s=1.0)]}
    assert compare(old, doc(1, 1.0))[0].verdict == "same"  # no version recorded: version 1


def _timed_doc(samples):
    import statistics

    return {"results": [result("mine", "f", "numpy", "cpu", params={"n": 1},
                               median_s=statistics.median(samples), iqr_s=0.0,
                               samples_s=list(samples))]}  # fmt: skip


def test_a_change_needs_both_the_ratio_and_a_significant_mann_whitney_test():
    from vecx.results import compare

    rng = __import__("numpy").random.default_rng(0)
    base = list(1.0 + 0.01 * rng.standard_normal(9))
    slower = [x * 1.5 for x in base]
    c = compare(_timed_doc(base), _timed_doc(slower))[0]
    assert c.verdict == "regression" and c.test.startswith("mann-whitney p=")
    assert compare(_timed_doc(slower), _timed_doc(base))[0].verdict == "improvement"
    # a planted stall in a minority of the new samples moves the median a little and is
    # no regression: the two sets of samples are not separated
    stalled = base[:6] + [16.0, 16.0, 16.0]
    c = compare(_timed_doc(base), _timed_doc(stalled))[0]
    assert c.verdict == "same" and c.test.startswith("mann-whitney")
    # significant but small: below the threshold factor, no verdict either
    assert compare(_timed_doc(base), _timed_doc([x * 1.05 for x in base]))[0].verdict == "same"
    # too few samples to test: the IQR rule of older files decides
    c = compare(_timed_doc(base[:2]), _timed_doc(slower[:2]))[0]
    assert c.test == "iqr-overlap" and c.verdict == "regression"


def test_records_keep_their_samples_and_the_minimum():
    from vecx.suites import MAX_SAMPLES, kept_samples, timed
    from vecx.timing import Measurement

    class Be:
        name, device, dtype = "numpy", "cpu", "float32"

    m = Measurement(tuple(float(i + 1) for i in range(100)), 1, 0.0)
    rec = timed("s", "c", Be(), m, params={}, metric="time", value=m.median, unit="s", scale=2)
    assert rec["min_s"] == 2.0 and len(rec["samples_s"]) == MAX_SAMPLES
    assert rec["samples_s"][0] == 2.0 and rec["samples_s"] == sorted(rec["samples_s"])
    assert kept_samples([3.0, 1.0]) == [3.0, 1.0]  # in the order measured


def test_a_busy_run_says_so_in_its_report_and_in_compare(tmp_path):
    from vecx.report import render_report

    doc = {"schema": 1, "machine": {"cores": 2},
           "settings": {"busy": "the machine was busy (1-minute load average up to 3.20 on 2 "
                        "cores)"},
           "results": [result("mine", "f", "numpy", "cpu", params={}, median_s=1.0)]}  # fmt: skip
    assert "**Busy machine**: the machine was busy (1-minute load" in render_report(doc)
    path = tmp_path / "busy.json"
    path.write_text(json.dumps(doc))
    proc = subprocess.run([sys.executable, "-m", "vecx", "compare", str(path), str(path)],
                          capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "the old run says the machine was busy" in proc.stderr
    assert "the new run says the machine was busy" in proc.stderr


def test_a_suspect_change_is_never_a_regression():
    from vecx.results import compare
    from vecx.tables import suite_tables

    base = [1.0, 1.01, 0.99, 1.0, 1.02, 0.98, 1.0]
    stalled = _timed_doc([x * 16 for x in base])
    stalled["results"][0]["suspect"] = "threads waited on the run queue for 80% of the time"
    c = compare(_timed_doc(base), stalled)[0]
    assert c.verdict == "suspect" and c.ratio == pytest.approx(16.0)
    t = suite_tables(stalled)[0]
    assert t.rows[0][3].endswith(" ?") and any("suspect, threads waited" in n for n in t.notes)


def test_the_headline_is_the_fastest_block_in_compare_and_in_tables():
    """A majority of stalled blocks moves the median; the fastest block, which compare's
    ratio and the tables read (headline_s), stays where the quiet calls were."""
    from vecx.results import compare, headline_s
    from vecx.tables import with_spread

    quiet = [1e-3 * (1 + 0.001 * i) for i in range(9)]
    stalled = quiet[:3] + [4e-3] * 6  # 6 of 9 blocks stalled: the median is 4x
    old, new = _timed_doc(quiet), _timed_doc(stalled)
    for doc, samples in ((old, quiet), (new, stalled)):
        doc["results"][0]["min_s"] = min(samples)
    assert new["results"][0]["median_s"] == 4e-3 and headline_s(new["results"][0]) == 1e-3
    c = compare(old, new)[0]
    assert c.ratio == pytest.approx(1.0) and c.new_s == 1e-3
    assert with_spread(new["results"][0]).startswith("1.00 ms")
    # a file without min_s (written before it existed) is read by its median
    del new["results"][0]["min_s"]
    assert headline_s(new["results"][0]) == 4e-3


def test_compare_names_environment_and_thread_differences():
    """OPENBLAS_CORETYPE or a backend's thread count changes the numbers: compare says so."""
    from vecx.results import settings_differences

    def doc(env, threads):
        return {"settings": {"env": env, "workers": {"numpy:cpu": {"threads": threads},
                                                     "torch:cpu": {"threads": 2}}}}  # fmt: skip

    old = doc({"OPENBLAS_CORETYPE": "Haswell"}, 2)
    assert settings_differences(old, doc({"OPENBLAS_CORETYPE": "Haswell"}, 2)) == []
    assert settings_differences(old, doc({}, 1)) == [
        "env OPENBLAS_CORETYPE (Haswell -> unset)", "threads of numpy:cpu (2 -> 1)"]
