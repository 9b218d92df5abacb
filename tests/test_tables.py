"""vecx.tables: per-suite tables from a results document (units, vs-baseline, errors).

`synthetic_doc` (a fixture of conftest.py, shared with test_plots.py and test_report.py):
every suite, three backends, an extrapolated JAX loop, a failed record and a disagreeing
training run.
"""

from __future__ import annotations

import re

import pytest

from vecx.results import result
from vecx.tables import (
    Table,
    check_baseline,
    format_number,
    format_time,
    markdown_table,
    print_tables,
    relative_speed,
    suite_tables,
)


def _table(tables: list[Table], suite: str) -> Table:
    (t,) = [t for t in tables if t.suite == suite]
    return t


def _row(table: Table, **match: str) -> dict[str, str]:
    rows = [dict(zip(table.columns, r, strict=True)) for r in table.rows]
    hits = [r for r in rows if all(r[k] == v for k, v in match.items())]
    assert len(hits) == 1, (match, hits)
    return hits[0]


# --------------------------------------------------------------------------- formatting


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (1.5, "1.50 s"),
        (12.34, "12.3 s"),
        (0.00123, "1.23 ms"),
        (2.5e-6, "2.50 µs"),
        (3e-9, "3.00 ns"),
        (250e-6, "250 µs"),
        (None, "-"),
    ],
)
def test_format_time_picks_the_unit(seconds, text):
    assert format_time(seconds) == text


# --------------------------------------------------------------------------- suite_tables


def test_one_table_per_suite_in_fixed_order(synthetic_doc):
    tables = suite_tables(synthetic_doc())
    assert [t.suite for t in tables] == ["vector-add", "matmul", "scaling", "train"]
    for t in tables:
        assert t.columns[-1] == "vs numpy"
        assert all(len(r) == len(t.columns) for r in t.rows)
        assert len(t.align) == len(t.columns)


def test_suites_argument_limits_and_orders_and_skips_absent(synthetic_doc):
    doc = synthetic_doc(("matmul", "train"))
    tables = suite_tables(doc, suites=["train", "scaling", "matmul"])
    assert [t.suite for t in tables] == ["train", "matmul"]


def test_matmul_units_and_relative_speed(synthetic_doc):
    t = _table(suite_tables(synthetic_doc()), "matmul")
    assert "GFLOP/s" in t.columns
    full_np = _row(t, case="full", backend="numpy:cpu")
    assert full_np["time"] == "200 µs ±2%"
    assert full_np["GFLOP/s"] == "168"  # 2 * 256^3 / 200 us
    assert full_np["vs numpy"] == "1.00x"
    assert _row(t, case="full", backend="torch:cpu")["vs numpy"] == "2.00x"  # half the time
    assert _row(t, case="column", backend="jax:cpu")["vs numpy"] == "0.500x"  # twice the time


def test_other_baseline_and_missing_baseline_case(synthetic_doc):
    t = _table(suite_tables(synthetic_doc(), baseline="torch:cpu"), "matmul")
    assert t.columns[-1] == "vs torch:cpu"
    assert _row(t, case="full", backend="numpy:cpu")["vs torch:cpu"] == "0.500x"
    assert _row(t, case="full", backend="jax:cpu")["vs torch:cpu"] == "0.250x"
    # torch's element case failed: nothing to compare against
    assert _row(t, case="element", backend="numpy:cpu")["vs torch:cpu"] == "-"


def test_a_baseline_absent_from_the_run_gets_a_note_not_a_column_of_dashes(synthetic_doc):
    for t in suite_tables(synthetic_doc(), baseline="cupy"):
        assert "vs cupy" not in t.columns
        assert all(len(r) == len(t.columns) == len(t.align) for r in t.rows)
        assert t.notes[0] == (
            "cupy is not in this run: no 'vs cupy' column (--baseline picks another)"
        )


def test_check_baseline_normalises_and_rejects_unknown_names(synthetic_doc):
    recs = synthetic_doc()["results"]
    assert check_baseline("NumPy") == "numpy"
    assert check_baseline("torch:cuda") == "torch:cuda:0"  # as backend_label writes it
    assert check_baseline("torch:cpu", recs) == "torch:cpu"
    assert check_baseline("cupy", recs) == "cupy"  # known, absent from the run: a note
    with pytest.raises(ValueError, match=r"--baseline: unknown backend 'tensorflow'; choose "
                       r"one of numpy, .*\(this run has numpy:cpu, torch:cpu, jax:cpu\)"):
        check_baseline("tensorflow", recs)


def _oom(doc: dict) -> str:
    """The out-of-memory error text the synthetic document's torch element case has."""
    return next(r["error"] for r in doc["results"] if "out of memory" in (r["error"] or ""))


def test_error_record_shows_text_never_a_number(synthetic_doc):
    doc = synthetic_doc()
    OOM_TEXT = _oom(doc)
    t = _table(suite_tables(doc), "matmul")
    row = _row(t, case="element", backend="torch:cpu")
    cells = [row[c] for c in ("time", "GFLOP/s", "vs numpy")]
    assert cells[0].startswith("error: RuntimeError: out of memory")
    assert cells[0].endswith("…") and len(cells[0]) < len(OOM_TEXT)  # shortened
    assert cells[1:] == ["-", "-"]
    assert not re.search(r"\d", cells[0].replace("error: ", "")[:30])
    assert any(OOM_TEXT in n for n in t.notes)  # the full first line as a note


def test_vector_add_extrapolation_note_and_vectorization_speedup(synthetic_doc):
    t = _table(suite_tables(synthetic_doc()), "vector-add")
    loop = _row(t, case="loop", backend="jax:cpu")
    assert loop["time per add"] == "10.0 ms ±2% *"
    # extrapolated (measured_n differs) but still compared with numpy's loop
    assert loop["vs numpy"] == "0.500x"
    assert _row(t, case="vectorized", backend="numpy:cpu")["time per add"] == "5.00 µs ±2%"
    notes = "\n".join(t.notes)
    assert "jax:cpu loop (*): extrapolated from 1,000 of 10,000 elements" in notes
    assert "JAX writes with c.at[i].set" in notes
    assert "numpy:cpu: vectorized is 1,000x faster than the loop" in notes


def test_scaling_rates_and_percent_of_ceiling(synthetic_doc):
    t = _table(suite_tables(synthetic_doc()), "scaling")
    row = _row(t, case="matmul", backend="numpy:cpu", n="256")
    assert row["achieved"].endswith(" GFLOP/s")
    value = float(row["achieved"].split()[0])
    assert row["% of ceiling"] == f"{100 * value / 200:.0f}%"
    assert _row(t, case="copy", backend="torch:cpu", n="1,024")["achieved"].endswith(" GB/s")
    # rows go by case, then size, numpy first
    cases = [r[0] for r in t.rows]
    assert cases.index("copy") > cases.index("vector-add")
    assert t.rows[0][:3] == ["vector-add", "numpy:cpu", "1,024"]


def test_train_table_flags_disagreement_and_compares_native_with_baseline(synthetic_doc):
    t = _table(suite_tables(synthetic_doc()), "train")
    bad = _row(t, preset="airfoil-mb10", backend="jax:cpu", impl="native")
    assert bad["agrees"] == "NO"
    assert bad["final loss"] == "0.91"
    assert any("jax:cpu native airfoil-mb10" in n and "disagrees" in n for n in t.notes)
    # native torch at half the vecx time of torch, which is half of numpy: 4x numpy
    assert _row(t, preset="airfoil-gd", backend="torch:cpu", impl="native")["vs numpy"] == "4.00x"
    assert _row(t, preset="airfoil-sgd", backend="numpy:cpu", impl="vecx")["time / epoch"] == (
        "2.00 s ±3%"
    )


def test_unknown_suite_gets_a_generic_table(synthetic_doc):
    doc = synthetic_doc(("matmul",))
    doc["results"].append(
        result(
            "blas",
            "gemv",
            "numpy",
            "cpu",
            params={"n": 64, "layout": "C"},
            median_s=1e-6,
            metric="gflops",
            value=8.0,
            unit="GFLOP/s",
        )
    )
    t = _table(suite_tables(doc), "blas")
    assert t.columns == ["case", "backend", "n", "layout", "time", "GFLOP/s", "vs numpy"]
    assert t.rows == [["gemv", "numpy:cpu", "64", "C", "1.00 µs", "8.00", "1.00x"]]


def test_generic_table_sorts_sizes_as_numbers_and_shows_a_time_once():
    recs = [
        result("mine", "step", "numpy", "cpu", params={"batch": b}, median_s=t, iqr_s=0.0,
               n_runs=5, metric="time", value=t, unit="s")
        for b, t in ((256, 4e-3), (64, 1e-3), (1024, 16e-3))
    ]  # fmt: skip
    t = _table(suite_tables({"results": recs}), "mine")
    assert [row[2] for row in t.rows] == ["64", "256", "1,024"]
    assert t.columns == ["case", "backend", "batch", "time", "vs numpy"]  # no "value" column
    assert t.rows[0][3] == "1.00 ms ±0%"


def test_relative_speed_falls_back_to_values():
    a = {"median_s": None, "value": 10.0, "unit": "GFLOP/s"}
    b = {"median_s": None, "value": 5.0, "unit": "GFLOP/s"}
    assert relative_speed(a, b) == 2.0
    assert relative_speed({**a, "unit": "s"}, {**b, "unit": "s"}) == 0.5
    assert relative_speed(a, {**b, "unit": "GB/s"}) is None
    assert relative_speed(a, None) is None
    assert relative_speed({**a, "error": "x"}, b) is None


# --------------------------------------------------------------------------- rendering


def test_markdown_table_layout():
    t = Table("demo | title", ["case", "time"], [["a|b", "1.00 ms *"]], ["note *x*"], ["l", "r"])
    md = markdown_table(t)
    lines = md.splitlines()
    assert lines[0] == "### demo | title"
    assert lines[2] == "| case | time |"
    assert lines[3] == "| --- | ---: |"
    assert lines[4] == "| a\\|b | 1.00 ms \\* |"
    assert lines[-1] == "- note \\*x\\*"


def test_markdown_tables_have_consistent_columns(synthetic_doc):
    for t in suite_tables(synthetic_doc()):
        body = [ln for ln in markdown_table(t).splitlines() if ln.startswith("|")]
        counts = {len(re.findall(r"(?<!\\)\|", ln)) for ln in body}
        assert counts == {len(t.columns) + 1}, t.title
        assert len(body) == len(t.rows) + 2


def test_print_tables_plain_and_unwrapped_when_not_a_terminal(synthetic_doc, capsys):
    doc = synthetic_doc(("matmul",))
    OOM_TEXT = _oom(doc)
    print_tables(suite_tables(doc))
    out = capsys.readouterr().out
    assert "+---" in out or "|---" in out  # ASCII box, no box-drawing characters
    assert not re.search("[\u2500-\u257f]", out)
    # a long error stays on one row instead of folding into several lines
    err_lines = [ln for ln in out.splitlines() if "error: RuntimeError" in ln]
    assert len(err_lines) == 1 and "element" in err_lines[0] and "torch:cpu" in err_lines[0]
    assert "torch:cpu element failed: " + OOM_TEXT in out


def test_record_notes_are_grouped_by_text():
    recs = [
        result("scaling", "copy", be, "cpu", params={"n": 8}, median_s=1e-6, note="y = -x")
        for be in ("numpy", "torch")
    ]
    recs.append(result("scaling", "copy", "jax", "cpu", params={"n": 8}, median_s=1e-6, note="jit"))
    notes = _table(suite_tables({"results": recs}), "scaling").notes
    assert "numpy:cpu, torch:cpu: y = -x" in notes and "jax:cpu: jit" in notes
    notes = _table(suite_tables({"results": recs[:2]}), "scaling").notes
    assert "y = -x" in notes  # every backend: no prefix


def test_a_single_run_shows_no_spread():
    rec = result(
        "matmul",
        "full",
        "numpy",
        "cpu",
        params={"n": 8},
        median_s=2e-3,
        iqr_s=0.0,
        n_runs=1,
        value=1.0,
        unit="GFLOP/s",
    )
    (t,) = suite_tables({"results": [rec]})
    assert t.rows[0][3] == "2.00 ms"
    assert t.notes[-1] == "every time here is a single measurement: no ± spread"
    (t,) = suite_tables({"results": [{**rec, "n_runs": 5}]})
    assert t.rows[0][3] == "2.00 ms ±0%"
    assert not any("single" in n for n in t.notes)
    # some rows measured once: the note names them
    (t,) = suite_tables({"results": [{**rec, "n_runs": 5}, {**rec, "backend": "jax"}]})
    assert t.notes[-1] == "single measurement, so no ± spread: jax:cpu full (n=8)"


def test_a_note_part_shared_by_several_records_is_said_once():
    """Suites join a record's notes with '; ' (the JAX write note and the element one)."""
    jax = "JAX arrays are immutable: writes into A are A = A.at[...].set(...)"
    element = "element timed on the first 16 of 64 dot products, the time then scaled up"
    recs = [
        result("matmul", "element", "jax", "cpu", params={"n": 8}, median_s=1e-3,
               note=f"{jax}; {element}"),
        result("matmul", "column", "jax", "cpu", params={"n": 8}, median_s=1e-3, note=jax),
        result("matmul", "column", "numpy", "cpu", params={"n": 8}, median_s=1e-3),
    ]  # fmt: skip
    notes = _table(suite_tables({"results": recs}), "matmul").notes
    assert notes == [f"jax:cpu: {jax}", f"jax:cpu: {element}"]


def test_row_order_does_not_follow_the_shuffled_run_order(synthetic_doc):
    doc = synthetic_doc(("matmul",))
    reordered = {**doc, "results": list(reversed(doc["results"]))}
    assert suite_tables(reordered) == suite_tables(doc)
    t = _table(suite_tables(doc), "matmul")
    assert [r[1] for r in t.rows[:3]] == ["numpy:cpu", "torch:cpu", "jax:cpu"]
    # the baseline leads each case
    t = _table(suite_tables(doc, baseline="jax"), "matmul")
    assert [r[1] for r in t.rows[:3]] == ["jax:cpu", "numpy:cpu", "torch:cpu"]


def test_scaling_notes_say_the_ceiling_is_in_cache_and_give_main_memory(synthetic_doc):
    from vecx.suites.scaling import add_ceilings

    doc = synthetic_doc(("scaling",))
    doc["settings"] = {"ceilings": add_ceilings(doc["results"])}
    (table,) = suite_tables(doc)
    assert "best copy rate at any size" in table.notes[0] and "in-cache" in table.notes[0]
    mem = doc["settings"]["ceilings"]["cpu"]["bandwidth_memory"]
    assert mem["main_memory"] is False  # the synthetic run has small sizes only
    assert any(
        note.startswith("cpu copy rate at the largest size (no main-memory size in this run): ")
        and format_number(mem["value"]) in note
        for note in table.notes
    ), table.notes
    mem.update(main_memory=True, basis="best copy rate at sizes whose 2 arrays take >= 64 MiB")
    (table,) = suite_tables(doc)
    assert any(note.startswith("cpu main-memory bandwidth: ") for note in table.notes)
