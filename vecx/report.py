"""A Markdown report of one results file: machine, settings, backends, tables, plots, flags.

The report is meant to be committed next to its results JSON (``bench/results/``) and read
on a code-hosting site, so it uses only GitHub-flavoured Markdown (headings, pipe tables,
lists, relative image links) and no HTML. Every number comes from `vecx.tables`, so the
report and ``vecx bench``'s terminal summary agree.

Plots: `build_report` links the PNGs written by `vecx.plots.plot_results`. They are
generated into ``plots_dir`` when one is given, otherwise looked for beside the results
(the results' own folder, where ``vecx bench`` writes them, then ``<stem>-plots/`` and
``plots/``). Links are relative to the
folder the report will live in (``output``'s folder, or the results' folder when the report
goes to stdout and is saved beside them, as ``vecx report r.json > REPORT.md`` does).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vecx.tables import (
    Table,
    backend_label,
    check_baseline,
    format_number,
    markdown_table,
    suite_tables,
)
from vecx.timing import NOISY_IQR as NOISY


def figure_specs(suites: Sequence[str]) -> dict[str, tuple[str, str]]:
    """``{stem: (suite, caption)}`` of every figure the given suites draw, in order."""
    from vecx.suites.suite import presentation

    return {spec.stem: (name, spec.caption) for name in suites
            for spec in presentation(name).figures}  # fmt: skip


#: Environment variables worth a warning when set, with why.
_ENV_WARNINGS = {
    "OPENBLAS_CORETYPE": "forces OpenBLAS's kernel choice; it can make float32 matmul ~2x slower",
    "OPENBLAS_L2_SIZE": "overrides OpenBLAS's cache-size guess, which changes its blocking",
}



def default_plot_dir(results_path: str | os.PathLike[str]) -> Path:
    """Where ``vecx plot`` puts the figures of ``results_path`` by default: its own folder.

    That is where ``vecx bench`` writes them (``OUT/results.json`` beside ``OUT/*.png``),
    so a run folder is self-contained and its report links ``matmul.png`` directly.
    """
    return Path(results_path).parent


def find_plots(
    results_path: str | os.PathLike[str], suites: Sequence[str] | None = None
) -> dict[str, Path]:
    """Existing figure PNGs beside ``results_path``, by stem, of the figures ``suites``
    draw (default: the suites in the results file).

    Looked for in the results' folder, then ``<stem>-plots/`` and ``plots/`` below it; the
    first folder holding any figure wins.
    """
    p = Path(results_path)
    if suites is None:
        from vecx.results import load

        suites = _suites(load(p))
    stems = figure_specs(suites)
    for folder in (p.parent, p.with_name(f"{p.stem}-plots"), p.parent / "plots"):
        found = {s: folder / f"{s}.png" for s in stems if (folder / f"{s}.png").is_file()}
        if found:
            return found
    return {}


def build_report(
    results_path: str | os.PathLike[str],
    *,
    plots_dir: str | os.PathLike[str] | None = None,
    output: str | os.PathLike[str] | None = None,
    baseline: str = "numpy",
) -> str:
    """Load ``results_path`` and return its Markdown report.

    ``plots_dir``: generate the figures there (PNG and SVG) and link them; otherwise link
    those found by `find_plots`. ``output``: where the report will be saved, to make the
    image links relative to it (default: beside the results).
    """
    from vecx.results import load

    results_path = Path(results_path)
    doc = load(results_path)
    if plots_dir is not None:
        from vecx.plots import plot_results

        written = plot_results(doc, plots_dir)
        plots = {p.stem: p for p in written if p.suffix == ".png"}
    else:
        plots = find_plots(results_path, _suites(doc))
    base = Path(output).parent if output is not None else results_path.parent
    links = {stem: _relative(path, base) for stem, path in plots.items()}
    return render_report(
        doc, plots=links, baseline=baseline, source=results_path.name, plots_hint=not plots
    )


def _suites(doc: Mapping[str, Any]) -> list[str]:
    return list(dict.fromkeys(str(r.get("suite")) for r in doc.get("results", [])
                              if isinstance(r, Mapping)))  # fmt: skip


def _relative(path: Path, base: Path) -> str:
    """A POSIX relative link from folder ``base`` to ``path`` (works on any host)."""
    rel = os.path.relpath(path.resolve(), base.resolve())
    return Path(rel).as_posix()


# --------------------------------------------------------------------------- rendering


def render_report(
    doc: Mapping[str, Any],
    *,
    plots: Mapping[str, str] | None = None,
    baseline: str = "numpy",
    source: str | None = None,
    plots_hint: bool = False,
) -> str:
    """The Markdown report of a loaded results document.

    ``plots`` maps figure stems (see `figure_specs`) to link targets; each figure is
    placed under its suite's table. ``source`` is the results file name shown in the header.
    """
    plots = dict(plots or {})
    records = [r for r in doc.get("results", []) if isinstance(r, Mapping)]
    baseline = check_baseline(baseline, records)  # ValueError for an unknown backend
    tables = suite_tables(doc, baseline=baseline)
    suites = list(dict.fromkeys(r["suite"] for r in records))
    parts = [_header(doc, records, suites, source, baseline)]
    parts.append(_flags(doc, records))
    parts.append(_machine(doc.get("machine") or {}))
    parts.append(_settings(doc.get("settings") or {}))
    parts.append(_backends(doc.get("backends") or {}, doc.get("settings") or {}))
    parts.append("## Results\n")
    if not tables:
        parts.append("This results file has no records.\n")
    elif plots_hint:
        parts.append(
            "No plots were found beside the results; `vecx report RESULTS.json --plots DIR` "
            "draws them.\n"
        )
    specs = figure_specs(suites)
    for table in tables:
        parts.append(_suite_section(table.suite, table, plots, specs))
    extra = [s for s in plots if s not in specs]
    for stem in extra:  # a figure no suite of this run claims: still show it
        parts.append(_image(stem, plots[stem], stem))
    return "\n".join(p.rstrip("\n") + "\n" for p in parts if p)


def _suite_section(
    suite: str, table: Table, plots: Mapping[str, str], specs: Mapping[str, tuple[str, str]]
) -> str:
    out = [markdown_table(table)]
    for stem, (owner, caption) in specs.items():
        if owner == suite and stem in plots:
            out.append(_image(stem, plots[stem], caption))
    return "\n".join(out)


def _image(stem: str, link: str, caption: str) -> str:
    return f"![{caption}]({link.replace(' ', '%20')})\n"


def _md(text: Any) -> str:
    """A value as a Markdown table cell (pipes escaped, no newlines)."""
    s = "-" if text is None or text == "" else str(text)
    return s.replace("|", "\\|").replace("\n", " ")


def _kv_table(rows: Sequence[tuple[str, Any]], head: tuple[str, str] = ("", "")) -> str:
    lines = [f"| {head[0]} | {head[1]} |", "| --- | --- |"]
    lines += [f"| {_md(k)} | {_md(v)} |" for k, v in rows]
    return "\n".join(lines) + "\n"


def _header(
    doc: Mapping[str, Any],
    records: Sequence[Mapping[str, Any]],
    suites: Sequence[str],
    source: str | None,
    baseline: str,
) -> str:
    machine = doc.get("machine") or {}
    where = machine.get("gpu") or machine.get("cpu") or "an unknown machine"
    failed = sum(1 for r in records if r.get("error"))
    backends = list(dict.fromkeys(backend_label(r) for r in records))
    lines = [f"# vecx benchmark report: {where}", ""]
    facts = [
        f"vecx {doc.get('vecx_version', '?')}",
        f"run {doc.get('created', 'at an unknown time')}",
    ]
    if source:
        facts.append(f"results `{source}`")
    lines.append(", ".join(facts) + ".")
    lines.append("")
    summary = (
        f"{len(records)} measurements of {len(suites)} suite{'s' * (len(suites) != 1)} "
        f"({', '.join(suites) or 'none'}) on {len(backends)} backend x device "
        f"combination{'s' * (len(backends) != 1)} ({', '.join(backends) or 'none'})"
    )
    summary += f"; {failed} failed." if failed else "."
    lines.append(summary)
    lines.append("")
    if any(r.get("backend") == baseline or backend_label(r) == baseline for r in records):
        vs = (
            f'; "vs {baseline}" is how many times faster than {baseline} on the same case '
            f"(`-` where {baseline} has no result for it)."
        )
    else:
        vs = f'; {baseline} is not in this run, so there is no "vs {baseline}" column.'
    lines.append("Times are each measurement's fastest block (interference only adds time), "
                 "with the interquartile range as ±% of the median" + vs)
    return "\n".join(lines) + "\n"


def _all_env(settings: Mapping[str, Any]) -> dict[str, str]:
    """Environment variables recorded for the run and for each worker process."""
    env: dict[str, str] = {}
    if isinstance(settings.get("env"), Mapping):
        env.update({str(k): str(v) for k, v in settings["env"].items()})
    workers = settings.get("workers")
    if isinstance(workers, Mapping):
        for worker in workers.values():
            if isinstance(worker, Mapping) and isinstance(worker.get("env"), Mapping):
                for k, v in worker["env"].items():
                    env.setdefault(str(k), str(v))
    return env


def _is_noisy(rec: Mapping[str, Any]) -> bool:
    """The suite's own verdict (``noisy``) if it gave one, else IQR over `NOISY` x median."""
    if rec.get("error"):
        return False
    if isinstance(rec.get("noisy"), bool):
        return rec["noisy"]
    med, iqr = rec.get("median_s"), rec.get("iqr_s")
    return _pos(med) and _pos(iqr) and iqr / med > NOISY


def _flags(doc: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> str:
    """What a reader must know before trusting the numbers, in one list."""
    settings = doc.get("settings") or {}
    flags = []
    if settings.get("interrupted"):
        flags.append(
            f"**Interrupted run** ({_compact(settings['interrupted'])}): results are partial."
        )
    planned, recorded = settings.get("cases_planned"), settings.get("cases_recorded")
    if isinstance(planned, int) and isinstance(recorded, int) and recorded < planned:
        flags.append(f"**Incomplete**: {recorded} of {planned} planned cases were recorded.")
    if settings.get("busy"):
        flags.append(f"**Busy machine**: {settings['busy']}.")
    if settings.get("quick"):
        flags.append("**Quick run** (`--quick`): smaller sizes and fewer repetitions.")
    precision = settings.get("precision")
    if precision and precision != "float32":
        flags.append(f"**Matmul precision `{precision}`**: float32 matmuls may use TF32.")
    env = _all_env(settings)
    for name, why in _ENV_WARNINGS.items():
        if name in env:
            flags.append(f"**`{name}={env[name]}`** is set: {why}.")
    for rec in records:
        label = f"{backend_label(rec)} {rec['suite']}/{rec['case']}"
        if rec.get("error"):
            first = (str(rec["error"]).strip().splitlines() or ["error"])[0]
            flags.append(f"**Failed**: {label}: `{_code(first)}`")
        elif rec.get("agrees") is False:
            impl = (rec.get("params") or {}).get("impl", "vecx")
            value = rec.get("value")
            loss = f"{value:.4g}" if _pos(value) or value == 0 else "?"
            flags.append(
                f"**Disagrees**: {label} ({impl}) ended at loss {loss}, unlike the other "
                "backends: a fast wrong result is not a result."
            )
    suspect = [r for r in records if r.get("suspect") and not r.get("error")]
    if suspect:
        flags.append(
            f"**Suspect**: {len(suspect)} of {len(records)} measurements show interference "
            f"({_listed(suspect)}), e.g. {suspect[0]['suspect']}; their numbers are not the "
            "code's."
        )
    noisy = [r for r in records if _is_noisy(r)]
    if noisy:
        flags.append(
            f"**Noisy**: {len(noisy)} of {len(records)} measurements have an IQR over "
            f"{NOISY:.0%} of the median ({_listed(noisy)}); compare those with care."
        )
    if not flags:
        return ""
    return "## Flags\n\n" + "\n".join(f"- {f}" for f in flags) + "\n"


def _listed(records: Sequence[Mapping[str, Any]], most: int = 8) -> str:
    """``numpy:cpu matmul/full, ... and 3 more``: which cases a flag is about."""
    names = list(dict.fromkeys(f"{backend_label(r)} {r['suite']}/{r['case']}" for r in records))
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def _code(text: str) -> str:
    return text.replace("`", "'")


def _pos(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def _machine(machine: Mapping[str, Any]) -> str:
    if not machine:
        return "## Machine\n\nNot recorded.\n"
    names = {
        "cpu": "CPU",
        "cores": "cores",
        "memory_gb": "memory",
        "gpu": "GPU",
        "driver": "GPU driver",
        "python": "Python",
        "platform": "platform",
    }
    rows = []
    for key, name in names.items():
        if key not in machine:
            continue
        val = machine[key]
        if key == "memory_gb" and isinstance(val, (int, float)):
            val = f"{val:g} GiB"
        if key == "gpu" and not val:
            val = "none"
        if key == "driver" and not val:
            continue
        rows.append((name, val))
    rows += [(k, _compact(v)) for k, v in machine.items() if k not in names]
    return "## Machine\n\n" + _kv_table(rows, ("", "value"))


def _compact(v: Any) -> str:
    if isinstance(v, (dict, list)):
        return "`" + _code(json.dumps(v, separators=(", ", ": "))) + "`"
    if isinstance(v, bool):
        return "yes" if v else "no"
    return "-" if v is None else str(v)


#: Settings keys rendered in their own sections rather than as table rows.
_SETTINGS_SECTIONS = ("env", "blas", "workers", "unavailable", "ceilings", "busy", "load")


def _settings(settings: Mapping[str, Any]) -> str:
    if not settings:
        return "## Settings\n\nNot recorded.\n"
    out = ["## Settings", ""]
    rows = [(k, _setting_value(v)) for k, v in settings.items() if k not in _SETTINGS_SECTIONS]
    env = settings.get("env")
    if isinstance(env, Mapping):
        rows += [(f"env `{k}`", v) for k, v in env.items()]
        if not env:
            rows.append(("environment", "no variable that changes the numbers was set"))
    out.append(_kv_table(rows, ("setting", "value")))
    workers = settings.get("workers")
    if isinstance(workers, Mapping) and workers:
        out.append(_workers(workers))
    elif isinstance(settings.get("blas"), list) and settings["blas"]:
        out.append("BLAS libraries loaded (threadpoolctl):\n")
        out.append(_blas_table(settings["blas"]))
    elif "blas" in settings and settings["blas"] is None:
        out.append("BLAS threads: not recorded (threadpoolctl missing).\n")
    load = settings.get("load")
    if isinstance(load, Mapping) and load:
        out.append(_load(load))
    ceilings = settings.get("ceilings")
    if isinstance(ceilings, Mapping) and ceilings:
        out.append(_ceilings(ceilings))
    return "\n".join(out)


def _load(load: Mapping[str, Any]) -> str:
    """The machine's load around each backend: 1-minute load average and the CPUs other
    processes kept busy, before and after."""

    def first(v: Any) -> Any:
        return v[0] if isinstance(v, list) and v else None

    lines = ["Load around each backend (1-minute load average; CPUs other processes kept "
             "busy, measured over 0.1 s):", "",
             "| worker | load before | load after | others' CPUs before | others' CPUs after |",
             "| --- | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for spec, entry in load.items():
        e = entry if isinstance(entry, Mapping) else {}
        cells = [first(e.get("start")), first(e.get("end")), e.get("others_cpus_start"),
                 e.get("others_cpus_end")]  # fmt: skip
        lines.append(f"| {_md(spec)} | " + " | ".join(_md(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _setting_value(v: Any) -> str:
    if isinstance(v, list) and all(isinstance(x, (str, int, float)) for x in v):
        return ", ".join(str(x) for x in v) or "-"
    if isinstance(v, Mapping) and all(isinstance(x, (str, int, float, bool)) for x in v.values()):
        return ", ".join(f"{k}={_compact(x)}" for k, x in v.items()) or "-"
    return _compact(v)


_BLAS_KEYS = ("internal_api", "version", "num_threads", "architecture", "threading_layer")


def _blas_table(blas: Sequence[Any], lead: Sequence[tuple[str, str]] = ()) -> str:
    """BLAS pools as a table; ``lead`` adds leading columns as (header, value) per pool."""
    pools = [b for b in blas if isinstance(b, Mapping)]
    keys = [k for k in _BLAS_KEYS if any(k in b for b in pools)]
    heads = [h for h, _ in lead] + [k.replace("_", " ") for k in keys]
    lines = ["| " + " | ".join(heads) + " |", "| " + " | ".join("---" for _ in heads) + " |"]
    for b in pools:
        lines.append(
            "| " + " | ".join([_md(v) for _, v in lead] + [_md(b.get(k)) for k in keys]) + " |"
        )
    return "\n".join(lines) + "\n"


_POOL_KEYS = ("pool", "library", "version", "threads", "architecture", "threading_layer")


def _workers(workers: Mapping[str, Any]) -> str:
    """Per worker process: the threads it was given, the pools its backend computes with
    (each backend's own: torch's ATen and MKL, XLA's, NumPy's OpenBLAS) and its
    environment. Files written before backends reported pools show threadpoolctl's view."""
    rows = {spec: w if isinstance(w, Mapping) else {} for spec, w in workers.items()}
    own = any(isinstance(w.get("pools"), list) for w in rows.values())
    source, label = ("pools", "the pools each backend computes with") if own else (
        "blas", "BLAS libraries as threadpoolctl saw them")
    keys = _POOL_KEYS if own else _BLAS_KEYS
    keys = [k for k in keys if any(isinstance(b, Mapping) and b.get(k) is not None
                                   for w in rows.values() for b in (w.get(source) or []))]
    heads = ["worker", "threads given", *[k.replace("_", " ") for k in keys], "environment"]
    lines = [
        f"Each backend ran in its own worker process ({label}):",
        "",
        "| " + " | ".join(heads) + " |",
        "| " + " | ".join("---" for _ in heads) + " |",
    ]
    for spec, w in rows.items():
        env = w.get("env") if isinstance(w.get("env"), Mapping) else {}
        env_text = ", ".join(f"`{k}={v}`" for k, v in env.items()) or "-"
        given = _md(w.get("threads", "as the environment had them"))
        pools = [b for b in (w.get(source) or []) if isinstance(b, Mapping)] or [{}]
        for b in pools:
            cells = [_md(spec), given, *[_md(b.get(k)) for k in keys], env_text]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


#: Ceiling kinds (keys of ``settings.ceilings[device]``) as the report names them.
_CEILING_KINDS = {
    "bandwidth": "bandwidth (`% of ceiling`)",
    "gflops": "compute (`% of ceiling`)",
    "bandwidth_memory": "main-memory bandwidth",
}


def _ceilings(ceilings: Mapping[str, Any]) -> str:
    """The measured ceilings that `% of ceiling` refers to, who reached them and how each
    was taken, plus the main-memory bandwidth reference."""
    lines = [
        "Ceilings measured in this run (`% of ceiling` divides by the bandwidth and compute "
        "ones; the main-memory bandwidth is a second reference, drawn in the scaling plot):",
        "",
        "| device | kind | ceiling | reached by | measured as |",
        "| --- | --- | ---: | --- | --- |",
    ]
    for device, kinds in ceilings.items():
        if not isinstance(kinds, Mapping):
            continue
        for kind, c in kinds.items():
            if not isinstance(c, Mapping):
                continue
            value = c.get("value")
            text = f"{format_number(value)} {c.get('unit') or ''}".strip() if _pos(value) else "-"
            who = " ".join(
                str(x)
                for x in (
                    c.get("backend"),
                    c.get("case"),
                    f"n={c['n']:,}" if isinstance(c.get("n"), int) else None,
                )
                if x
            )
            label = _CEILING_KINDS.get(kind, _md(kind))
            if kind == "bandwidth_memory" and c.get("main_memory") is False:
                label = "bandwidth at the largest size"
            basis = _md(c.get("basis")) if c.get("basis") else "-"
            lines.append(f"| {_md(device)} | {label} | {_md(text)} | {_md(who)} | {basis} |")
    return "\n".join(lines) + "\n"


def _backends(backends: Mapping[str, Any], settings: Mapping[str, Any]) -> str:
    main = ("framework", "version", "device_name")
    lines = []
    if backends:
        lines += [
            "| backend | framework | version | device | details |",
            "| --- | --- | --- | --- | --- |",
        ]
    for spec, info in backends.items():
        info = info if isinstance(info, Mapping) else {}
        details = ", ".join(
            f"{k}: {_compact(v)}"
            for k, v in info.items()
            if k not in main
            and k not in ("backend", "device")
            and v is not None
            and settings.get(k) != v  # dtype, precision: already in the settings
        )
        lines.append(
            f"| {_md(spec)} | {_md(info.get('framework'))} | {_md(info.get('version'))} "
            f"| {_md(info.get('device_name'))} | {_md(details)} |"
        )
    unavailable = settings.get("unavailable")
    if isinstance(unavailable, Mapping) and unavailable:
        lines += ["", "Not run here:", ""]
        lines += [f"- {_md(spec)}: {_md(why)}" for spec, why in unavailable.items()]
    if not lines:
        return ""
    return "## Backends\n\n" + "\n".join(lines) + "\n"


__all__ = ["build_report", "default_plot_dir", "figure_specs", "find_plots", "render_report"]
