"""Tests of vecx.results: record building, environment capture, streaming writer, load, compare."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import warnings
from typing import Any

import numpy as np
import pytest

from vecx import results as R
from vecx.results import (
    RESULT_KEYS,
    SCHEMA_VERSION,
    Comparison,
    ResultWriter,
    compare,
    has_regression,
    load,
    machine_info,
    result,
    runtime_settings,
)

# --------------------------------------------------------------------------- result()


def test_result_fills_every_key_with_none_where_absent():
    rec = result("blas", "matmul", "numpy", "cpu")
    assert tuple(rec)[: len(RESULT_KEYS)] == RESULT_KEYS
    assert rec["dtype"] == "float32" and rec["params"] == {}
    for key in RESULT_KEYS[6:]:
        assert rec[key] is None, key


def test_result_converts_numpy_scalars_and_survives_strict_json():
    rec = result(
        "blas",
        "matmul",
        "torch",
        "cpu",
        params={"n": np.int64(512), "shape": (np.int32(2), 3), "alpha": np.float32(0.5)},
        median_s=np.float64(0.25),
        iqr_s=np.float32(0.01),
        n_runs=np.int64(7),
        value=np.float64(1e12),
        curve=np.arange(3, dtype=np.float32),
        note="x",
    )
    assert type(rec["median_s"]) is float and type(rec["iqr_s"]) is float
    assert type(rec["n_runs"]) is int and rec["n_runs"] == 7
    assert type(rec["params"]["n"]) is int and type(rec["params"]["alpha"]) is float
    assert rec["curve"] == [0.0, 1.0, 2.0] and rec["note"] == "x"
    assert json.loads(json.dumps(rec, allow_nan=False)) == rec


@pytest.mark.parametrize(
    "kwargs, exc",
    [
        ({"suite": ""}, ValueError),
        ({"device": None}, ValueError),
        ({"median_s": "fast"}, TypeError),
        ({"median_s": float("nan")}, ValueError),
        ({"n_runs": 2.5}, TypeError),
        ({"error": RuntimeError("x")}, TypeError),
        ({"params": [1, 2]}, TypeError),
        ({"blob": object()}, TypeError),
    ],
)
def test_result_rejects_bad_fields(kwargs, exc):
    args = {"suite": "s", "case": "c", "backend": "numpy", "device": "cpu"}
    args.update(kwargs)
    with pytest.raises(exc):
        result(**args)


# --------------------------------------------------------------------------- environment


def test_machine_info_keys_and_types():
    info = machine_info()
    assert set(info) == {"cpu", "cores", "gpu", "driver", "python", "platform", "memory_gb"}
    assert isinstance(info["cpu"], str) and info["cpu"]
    assert isinstance(info["cores"], int) and info["cores"] >= 1
    assert info["gpu"] is None or isinstance(info["gpu"], str)
    assert info["driver"] is None or isinstance(info["driver"], str)
    assert info["python"] == ".".join(map(str, sys.version_info[:3]))
    assert isinstance(info["platform"], str)
    assert info["memory_gb"] is None or (
        isinstance(info["memory_gb"], float) and info["memory_gb"] > 0
    )
    json.dumps(info)


def _fake_nvidia_smi(tmp_path, monkeypatch, body: str) -> None:
    exe = tmp_path / "nvidia-smi"
    exe.write_text("#!/bin/sh\n" + body + "\n")
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")


def test_machine_info_reads_gpu_from_nvidia_smi(tmp_path, monkeypatch):
    _fake_nvidia_smi(
        tmp_path,
        monkeypatch,
        'printf "NVIDIA H100 80GB HBM3, 550.54.15\\nNVIDIA H100 80GB HBM3, 550.54.15\\n"',
    )
    info = machine_info()
    assert info["gpu"] == "2 x NVIDIA H100 80GB HBM3"
    assert info["driver"] == "550.54.15"


def test_machine_info_survives_failing_nvidia_smi(tmp_path, monkeypatch):
    _fake_nvidia_smi(tmp_path, monkeypatch, "echo 'NVIDIA-SMI has failed' >&2; exit 9")
    info = machine_info()
    assert info["gpu"] is None and info["driver"] is None


def test_runtime_settings_reports_set_env_vars_only(monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "NEOVERSEN1")
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    settings = runtime_settings()
    assert settings["env"]["OPENBLAS_CORETYPE"] == "NEOVERSEN1"
    assert "XLA_FLAGS" not in settings["env"]
    assert isinstance(settings["blas"], list)
    for pool in settings["blas"]:
        assert {"internal_api", "num_threads", "version", "architecture"} <= set(pool)
    json.dumps(settings)


def test_results_module_imports_no_framework():
    code = (
        "import sys, vecx.results as r; r.machine_info(); r.runtime_settings(); "
        "bad = {'torch', 'jax', 'cupy'} & set(sys.modules); assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- ResultWriter


def _rec(case: str, median: float | None = 1.0, iqr: float | None = 0.01, **kw) -> dict:
    return result("blas", case, "numpy", "cpu", median_s=median, iqr_s=iqr, **kw)


def test_writer_streams_records_before_finish(tmp_path):
    path = tmp_path / "run.json"
    w = ResultWriter(path)
    w.add(_rec("a"))
    w.add(_rec("b", params={"n": 4}))
    partial = ResultWriter.partial_path(path)
    assert partial.name == "run.json.partial.jsonl"
    lines = partial.read_text().splitlines()
    assert [json.loads(line)["case"] for line in lines] == ["a", "b"]
    assert not path.exists()
    # the run is "killed" here: finish() never runs, yet everything completed is recoverable
    del w
    assert [r["case"] for r in ResultWriter.recover(path)] == ["a", "b"]


def test_recover_skips_truncated_last_line(tmp_path):
    path = tmp_path / "run.json"
    w = ResultWriter(path)
    w.add(_rec("a"))
    w.add(_rec("b"))
    with open(ResultWriter.partial_path(path), "ab") as f:
        f.write(json.dumps(_rec("c")).encode()[:25])  # process died mid-write
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an expected truncation is not worth a warning
        assert [r["case"] for r in ResultWriter.recover(path)] == ["a", "b"]


def test_recover_warns_about_and_skips_a_corrupt_middle_line(tmp_path):
    path = tmp_path / "run.json"
    w = ResultWriter(path)
    w.add(_rec("a"))
    with open(ResultWriter.partial_path(path), "ab") as f:
        f.write(b"{garbage\n")
    w.add(_rec("b"))
    with pytest.warns(UserWarning, match="line 2"):
        assert [r["case"] for r in ResultWriter.recover(path)] == ["a", "b"]


def test_recover_without_partial_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="run.json.partial.jsonl"):
        ResultWriter.recover(tmp_path / "run.json")


def test_writer_appends_from_several_writers_and_new_run_truncates(tmp_path):
    path = tmp_path / "run.json"
    ResultWriter(path).add(_rec("a"))
    ResultWriter(path, append=True).add(_rec("b"))  # e.g. a worker process joining the run
    assert [r["case"] for r in ResultWriter.recover(path)] == ["a", "b"]
    ResultWriter(path)  # a fresh run discards the stale partial file
    assert ResultWriter.recover(path) == []


def test_writer_rejects_incomplete_record(tmp_path):
    w = ResultWriter(tmp_path / "run.json")
    with pytest.raises(ValueError, match="missing keys"):
        w.add({"suite": "s", "case": "c"})


def test_finish_writes_loadable_document_and_removes_partial(tmp_path):
    path = tmp_path / "sub" / "dir" / "run.json"  # missing directories are created
    w = ResultWriter(path)
    w.add(_rec("a"))
    w.add(_rec("b", error="RuntimeError: boom", median=None, iqr=None))
    header = {
        "vecx_version": "9.9",
        "created": "2025-01-01T00:00:00+00:00",
        "machine": machine_info(),
        "backends": {"numpy:cpu": {"version": np.__version__}},
        "settings": {"dtype": "float32", "quick": True, **runtime_settings()},
    }
    doc = w.finish(header)
    assert not ResultWriter.partial_path(path).exists()
    assert not [p for p in path.parent.iterdir() if p.name != "run.json"]  # no temp files left
    loaded = load(path)
    assert loaded == doc
    assert loaded["schema"] == SCHEMA_VERSION and loaded["vecx_version"] == "9.9"
    assert [r["case"] for r in loaded["results"]] == ["a", "b"]
    assert loaded["backends"]["numpy:cpu"]["version"] == np.__version__


def test_finish_fills_header_defaults(tmp_path):
    import vecx

    doc = ResultWriter(tmp_path / "run.json").finish({})
    assert doc["vecx_version"] == vecx.__version__
    assert doc["created"].endswith("+00:00")
    assert set(doc["machine"]) >= {"cpu", "cores"} and doc["results"] == []


def test_unwritable_directory_names_the_path(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a regular file")  # fails even for root, unlike chmod
    target = blocker / "results" / "run.json"
    with pytest.raises(OSError, match="not-a-dir") as info:
        ResultWriter(target)
    assert str(target) in str(info.value)


@pytest.mark.skipif(
    os.name != "posix" or os.geteuid() == 0, reason="root ignores directory permissions"
)
def test_read_only_directory_names_the_path(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(PermissionError, match=str(ro)):
            ResultWriter(ro / "run.json")
    finally:
        ro.chmod(0o755)


# --------------------------------------------------------------------------- load()


def test_load_missing_file_names_path(tmp_path):
    path = tmp_path / "nope.json"
    with pytest.raises(FileNotFoundError, match="nope.json"):
        load(path)


def test_load_malformed_json_names_path_and_position(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"schema": 1,\n "results": [}\n')
    with pytest.raises(ValueError, match=r"bad\.json is not valid JSON: line 2 column \d+"):
        load(path)


def _doc(*records: dict, **header) -> dict:
    return {
        "schema": SCHEMA_VERSION,
        "machine": {},
        "backends": {},
        "settings": {},
        "results": list(records),
        **header,
    }


@pytest.mark.parametrize(
    "content, problem",
    [
        ([1, 2], "not an object"),
        ({"results": []}, "schema"),
        (_doc(schema=2), "unknown schema version 2"),
        ({"schema": 1, "results": {}}, "'results' is not a list"),
        (_doc({"suite": "s", "case": "c"}), r"results\[0\] is missing keys backend"),
        (_doc(_rec("a"), 3), r"results\[1\] is a int"),
    ],
)
def test_load_wrong_structure_names_path_and_problem(tmp_path, content, problem):
    path = tmp_path / "wrong.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=problem) as info:
        load(path)
    assert str(path) in str(info.value)


def _with(field: str, value: Any) -> dict:
    return _doc({**_rec("a"), field: value})


@pytest.mark.parametrize(
    "content, problem",
    [  # fields of the wrong type, each named, never a traceback or a verdict from them
        (_with("median_s", "fast"), r"'median_s' must be float/int or null, got 'fast'"),
        (_with("median_s", [1.0]), r"'median_s' must be float/int or null, got \[1.0\]"),
        (_with("median_s", True), r"'median_s' must be float/int or null, got True"),
        (_with("iqr_s", "x"), r"'iqr_s' must be float/int or null"),
        (_with("value", {}), r"'value' must be float/int or null, got \{\}"),
        (_with("min_s", -1.0), r"'min_s' is -1.0, a time cannot be negative"),
        (_with("samples_s", ["a"]), r"'samples_s' must hold non-negative numbers"),
        (_with("samples_s", [1e-3, -1.0]), r"'samples_s' must hold non-negative numbers"),
        (_doc(settings={"ceilings": {"cpu": [1]}}), r"settings.ceilings must be an object of"),
        (_doc(settings={"ceilings": {"cpu": {"gflops": {"value": "x"}}}}),
         r"settings.ceilings must be"),
        (_doc(settings={"order": "numpy"}), r"settings.order must be a list of backend specs"),
        (_doc(settings={"workers": [1]}), r"settings.workers must be an object of objects"),
        (_doc(settings={"quick": "no"}), r"settings.quick must be true or false, got 'no'"),
        (_doc(settings=[]), r"'settings' must be an object"),
    ],
)
def test_load_checks_types_of_records_and_settings(tmp_path, content, problem):
    path = tmp_path / "typed.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=problem) as info:
        load(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("where", ["record", "settings"])
def test_load_refuses_non_finite_numbers_anywhere(tmp_path, token, where):
    doc = _doc(_rec("a"), settings={"timing": {"block_time": 0.01}})
    text = json.dumps(doc)
    text = (text.replace('"block_time": 0.01', f'"block_time": {token}') if where == "settings"
            else text.replace('"pct_of_ceiling": null', f'"pct_of_ceiling": {token}'))
    assert token in text
    path = tmp_path / "nan.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=f"holds {token}, which is not a number in strict JSON"):
        load(path)


# --------------------------------------------------------------------------- compare()


def test_compare_identical_runs_all_same():
    doc = _doc(_rec("a"), _rec("b", params={"n": 2}), _rec("b", params={"n": 4}))
    comps = compare(doc, json.loads(json.dumps(doc)))
    assert [c.verdict for c in comps] == ["same"] * 3
    assert all(c.ratio == 1.0 for c in comps)
    assert not has_regression(comps)


def test_compare_regression_needs_ratio_and_non_overlapping_noise():
    old = _doc(_rec("tight", 1.0, 0.01), _rec("noisy", 1.0, 0.6))
    new = _doc(_rec("tight", 2.0, 0.01), _rec("noisy", 2.0, 0.6))
    by_case = {c.case: c for c in compare(old, new)}
    assert by_case["tight"].verdict == "regression" and by_case["tight"].ratio == 2.0
    assert by_case["noisy"].verdict == "same"  # [0.4, 1.6] overlaps [1.4, 2.6]
    assert has_regression(by_case.values())


def test_compare_below_threshold_is_same_even_without_noise():
    comps = compare(_doc(_rec("a", 1.0, 0.0)), _doc(_rec("a", 1.05, 0.0)))
    assert comps[0].verdict == "same"
    assert (
        compare(_doc(_rec("a", 1.0, 0.0)), _doc(_rec("a", 1.05, 0.0)), threshold=0.01)[0].verdict
        == "regression"
    )


def test_compare_improvement():
    comps = compare(_doc(_rec("a", 1.0, 0.01)), _doc(_rec("a", 0.4, 0.01)))
    assert comps[0].verdict == "improvement" and comps[0].ratio == pytest.approx(0.4)
    assert not has_regression(comps)
    noisy = compare(_doc(_rec("a", 1.0, 0.5)), _doc(_rec("a", 0.4, 0.2)))
    assert noisy[0].verdict == "same"  # [0.2, 0.6] overlaps [0.5, 1.5]


def test_compare_unmatched_and_errors():
    old = _doc(_rec("gone"), _rec("a"), _rec("b"), _rec("x", dtype="float64"))
    new = _doc(
        _rec("a", median=None, iqr=None, error="BackendUnavailable: no GPU"),
        _rec("b", median=None, iqr=None),
        _rec("added"),
        _rec("x", dtype="float32"),  # another dtype is another case
    )
    verdicts = {(c.case, c.dtype): c.verdict for c in compare(old, new)}
    assert verdicts == {
        ("gone", "float32"): "only-old",
        ("a", "float32"): "error",
        ("b", "float32"): "error",
        ("x", "float64"): "only-old",
        ("added", "float32"): "only-new",
        ("x", "float32"): "only-new",
    }


def test_comparison_fields():
    (c,) = compare(
        _doc(_rec("a", 1.0, 0.1, params={"n": 3, "k": 1})),
        _doc(_rec("a", 3.0, 0.2, params={"k": 1, "n": 3})),
    )
    assert isinstance(c, Comparison)
    assert (c.suite, c.case, c.backend, c.device) == ("blas", "a", "numpy", "cpu")
    assert json.loads(c.params_key) == {"k": 1, "n": 3}
    assert (c.old_s, c.new_s, c.ratio, c.old_iqr_s, c.new_iqr_s) == (1.0, 3.0, 3.0, 0.1, 0.2)
    assert c.verdict == "regression" and c.verdict in R.VERDICTS


def test_has_regression_ignores_errors():
    assert not has_regression(compare(_doc(_rec("a")), _doc(_rec("a", error="boom"))))
    assert not has_regression([])
    with pytest.raises(ValueError):
        compare(_doc(), _doc(), threshold=-0.1)


def test_compare_matches_extrapolated_loops_of_two_runs():
    """How much of a slow loop a run timed (measured_n) differs between runs; the case
    is the same, so compare() must match it (review: it reported only-old/only-new)."""
    import vecx
    from vecx.suites import run_suite

    be = vecx.backend("numpy")
    fast = {"min_run_time": 0.002, "max_run_time": 0.01, "min_blocks": 2, "max_blocks": 5,
            "block_time": 0.0005, "warmup": 0}  # fmt: skip
    runs = [
        list(run_suite("vector-add", be, n=20_000, loop_budget_s=budget, timing=fast))
        for budget in (2e-4, 2e-3)
    ]
    loops = [recs[0] for recs in runs]
    assert all(r["extrapolated"] for r in loops)
    assert loops[0]["measured_n"] != loops[1]["measured_n"]
    verdicts = {c.case: c.verdict for c in compare(_doc(*runs[0]), _doc(*runs[1]))}
    assert set(verdicts) == {"loop", "vectorized"}
    assert "only-old" not in verdicts.values() and "only-new" not in verdicts.values()


def test_load_moves_run_chosen_keys_out_of_older_files_params(tmp_path):
    rec = _rec("loop", params={"n": 10, "measured_n": 4, "extrapolated": True})
    path = tmp_path / "old.json"
    path.write_text(json.dumps(_doc(rec)))
    (got,) = load(path)["results"]
    assert got["params"] == {"n": 10}
    assert got["measured_n"] == 4 and got["extrapolated"] is True
