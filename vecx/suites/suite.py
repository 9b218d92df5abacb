"""What a benchmark suite is, and how a name (built-in, installed, file, module) finds one.

A :class:`Suite` owns everything that a suite means: its cases (described once, by
:meth:`Suite.plan` and built by :meth:`Suite.cases`), its post-processing over every
backend's records (:meth:`Suite.finalize`: the scaling ceilings, the train agreement
check), its table (:meth:`Suite.columns` and :meth:`Suite.notes`), its figures and their
captions (:attr:`Suite.figures`) and its one-line progress text (:meth:`Suite.summary`).
The engine, the tables, the plots and the report ask the suite and name none, so adding a
suite is one file. The base class is the generic presentation: any suite (a user's
workload file, an old-style module) gets a table, a figure and a report section from it.

Names resolve in this order (:func:`load`): a built-in suite (``vector-add``, ...), an
installed plugin (entry-point group ``vecx.suites``), a file (``mybench.py``, relative to
the current folder), a module (``mypkg.bench``, the current folder importable). A module
may hold a ``SUITE`` object, functions decorated with :func:`vecx.workload`, or the older
``plan()``/``cases()`` pair.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vecx.suites import Case
    from vecx.tables import Column, Table, TableContext

#: Built-in suites in their default running order, and the module of each.
BUILTIN: dict[str, str] = {
    "vector-add": "vecx.suites.vector_add",
    "matmul": "vecx.suites.matmul",
    "scaling": "vecx.suites.scaling",
    "train": "vecx.suites.train",
}
#: Built-in suites that run only when named (``vecx bench --suites parallel``): they
#: start processes or hold large data.
OPT_IN: dict[str, str] = {
    "parallel": "vecx.suites.parallel",
}
#: Entry-point group of installed suites (``[project.entry-points."vecx.suites"]``).
ENTRY_POINT_GROUP = "vecx.suites"


class SuiteError(ValueError):
    """A suite name that finds nothing, or a suite file or module that cannot be used."""


@dataclass
class Finalized:
    """What :meth:`Suite.finalize` found over every backend's records.

    ``settings``: keys for the results header's ``settings`` (ceilings, a tolerance);
    ``flagged``: records it marked wrong (a disagreeing loss), which fail the run like an
    error; ``flagged_as``: how the summary names them (``"with a disagreeing final loss"``).
    """

    settings: dict[str, Any] = field(default_factory=dict)
    flagged: int = 0
    flagged_as: str = "flagged"


@dataclass(frozen=True)
class FigureSpec:
    """One figure of a suite: its file stem, its caption, and how to draw it.

    ``draw(records, doc)`` gets the suite's records (failed ones included, to list them)
    and the whole document; it returns a matplotlib ``Figure`` or ``None`` (nothing to show).
    """

    stem: str
    caption: str
    draw: Callable[[Sequence[Mapping[str, Any]], Mapping[str, Any]], Any]


class Suite:
    """A benchmark suite. Subclasses override what differs; the defaults are generic.

    ``name`` is what records carry in ``suite``; ``version`` is recorded as
    ``suite_version`` in each record and changes whenever the suite's cases change what they
    compute, so ``vecx compare`` never matches a changed case with its old self.
    """

    name: str = ""
    version: int | str = 1
    title: str = ""
    description: str = ""
    #: Case names in the order tables and figures list them (others follow as they come).
    case_names: tuple[str, ...] = ()
    #: Bench options this suite's ``plan`` and ``cases`` take as keywords, beyond
    #: ``quick`` and ``seed``: ``"modes"`` (``vecx bench --modes``) runs every case once
    #: per execution mode.
    options: tuple[str, ...] = ()

    # ----------------------------------------------------------------- the cases

    def plan(self, device: str, *, quick: bool = False, **sizes: Any) -> list[tuple[str, dict]]:
        """``[(case, identity params), ...]`` this suite runs on ``device`` (a spec), in order,
        without building a backend: the engine shows progress and accounts for every case
        a crashed worker never finished from it."""
        raise NotImplementedError

    def cases(self, be: Any, *, quick: bool = False, seed: int = 0, **sizes: Any) -> list[Case]:
        """The runnable cases on ``be``, in plan order."""
        raise NotImplementedError

    def finalize(self, records: list[dict[str, Any]], *, precision: str = "float32") -> Finalized:
        """Post-process this suite's records of every backend in place (after the run)."""
        return Finalized()

    # ----------------------------------------------------------------- presentation

    def order(self, records: Sequence[Mapping[str, Any]]) -> list[str]:
        """Case names in display order: `case_names` first, then the others as they come."""
        present = list(dict.fromkeys(str(r["case"]) for r in records))
        return [c for c in self.case_names if c in present] + [
            c for c in present if c not in self.case_names
        ]

    def table_title(self, records: Sequence[Mapping[str, Any]]) -> str:
        return self.title or self.name

    def columns(self, records: Sequence[Mapping[str, Any]]) -> list[Column]:
        """The table's columns ("vs baseline" is added by the tables): generic ones."""
        from vecx.tables import generic_columns

        return generic_columns(records)

    def notes(self, records: Sequence[Mapping[str, Any]], doc: Mapping[str, Any]) -> list[str]:
        """Footnotes of the table beyond the generic ones (record notes, errors)."""
        return []

    def table(self, records: Sequence[Mapping[str, Any]], doc: Mapping[str, Any],
              ctx: TableContext) -> Table:  # fmt: skip
        from vecx.tables import build_table

        return build_table(self.table_title(records), self.columns(records), records, ctx,
                           self.notes(records, doc))  # fmt: skip

    @property
    def figures(self) -> tuple[FigureSpec, ...]:
        """The figures of this suite (generic: its metric against size, per backend)."""
        stem = figure_stem(self.name)
        return (FigureSpec(stem, f"{self.name}: each case against size, a line per backend "
                           "(band: interquartile range)", _generic_figure),)  # fmt: skip

    def summary(self, rec: Mapping[str, Any]) -> str:
        """One line for the progress display after a case finished."""
        from vecx.tables import summary_text

        return summary_text(rec)


def figure_stem(name: str) -> str:
    """A file stem for a suite's generic figure (``mybench`` -> ``mybench``)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in name).strip(".-")
    return safe or "suite"


def _generic_figure(records: Sequence[Mapping[str, Any]], doc: Mapping[str, Any]) -> Any:
    from vecx.plots import generic_figure

    return generic_figure(records)


class ModuleSuite(Suite):
    """A suite whose cases are a module's ``plan(device, quick=, **sizes)`` and
    ``cases(be, quick=, seed=, **sizes)`` functions (the built-in suites subclass it for
    their presentation; an older-style module with ``NAME`` is presented generically)."""

    def __init__(self, module: ModuleType, name: str | None = None) -> None:
        self.module = module
        cls = type(self)
        if not cls.name:
            self.name = str(getattr(module, "NAME", None) or name or module.__name__)
        if hasattr(module, "VERSION"):
            self.version = module.VERSION
        if not cls.title:
            self.title = str(getattr(module, "TITLE", "") or "")
        if not cls.description:
            doc = (module.__doc__ or "").strip().splitlines()
            self.description = doc[0] if doc else ""

    def plan(self, device: str, *, quick: bool = False, **sizes: Any) -> list[tuple[str, dict]]:
        return list(self.module.plan(device, quick=quick, **sizes))

    def cases(self, be: Any, *, quick: bool = False, seed: int = 0, **sizes: Any) -> list[Case]:
        return list(self.module.cases(be, quick=quick, seed=seed, **sizes))


# --------------------------------------------------------------------------- finding suites


def installed() -> dict[str, Any]:
    """Installed suites by name (entry points of `ENTRY_POINT_GROUP`), without loading them."""
    try:
        found = entry_points(group=ENTRY_POINT_GROUP)
    except Exception:  # a broken distribution's metadata must not break vecx
        return {}
    return {ep.name.lower(): ep for ep in found}


def choices() -> str:
    """How suites can be named, for errors and ``vecx bench --help``."""
    plugins = [n for n in installed() if n not in BUILTIN]
    parts = [f"built-in: {', '.join(BUILTIN)}", f"when named: {', '.join(OPT_IN)}"]
    if plugins:
        parts.append(f"installed: {', '.join(plugins)}")
    parts.append("a workload file (mybench.py) or module (mypkg.bench)")
    return "; ".join(parts)


_LOADED: dict[str, Suite] = {}


def load(name: str) -> Suite:
    """The suite that ``name`` means (see the module docstring); loaded once per process.

    Raises `SuiteError` (a ``ValueError``) with one line: an unknown name with the
    choices, or the file:line of an exception raised while importing a user's file.
    """
    key = str(name).strip()
    if not key:
        raise SuiteError(f"empty suite name; choose from {choices()}")
    if key in _LOADED:
        return _LOADED[key]
    suite = _resolve(key)
    _LOADED[key] = suite
    return suite


def _resolve(key: str) -> Suite:
    low = key.lower()
    if low in BUILTIN or low in OPT_IN:
        return as_suite(importlib.import_module({**BUILTIN, **OPT_IN}[low]), low)
    plugins = installed()
    if low in plugins:
        try:
            obj = plugins[low].load()
        except Exception as exc:
            raise SuiteError(f"installed suite {key!r} cannot be loaded: {_located(exc)}") from None
        return as_suite(obj, low)
    if key.endswith(".py") or os.sep in key or "/" in key:
        return as_suite(_import_file(Path(key)), Path(key).stem)
    if "." not in key and not (Path(key) / "__init__.py").is_file():
        hint = f"; did you mean {key}.py?" if Path(f"{key}.py").is_file() else ""
        raise SuiteError(f"unknown suite {key!r}{hint}; choose from {choices()}")
    return as_suite(_import_module(key), key)


def _import_file(path: Path) -> ModuleType:
    path = path.expanduser().resolve()
    if path.is_dir():
        raise SuiteError(f"suite file {path} is a folder: name a .py file of workloads, or a "
                         "package as a module (mypkg.bench)")  # fmt: skip
    if not path.is_file():
        raise SuiteError(f"suite file {path} does not exist")
    mod_name = f"vecx_suite_{figure_stem(path.stem).replace('-', '_').replace('.', '_')}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise SuiteError(f"cannot import {path} as a Python file")
    module = importlib.util.module_from_spec(spec)
    folder = str(path.parent)
    if folder not in sys.path:  # like running it: the file can import its neighbours
        sys.path.insert(0, folder)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:  # SystemExit too: a user's file must not end vecx
        sys.modules.pop(mod_name, None)
        raise SuiteError(f"cannot import suite file {_located(exc, str(path))}") from None
    return module


def _import_module(dotted: str) -> ModuleType:
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:  # the console script leaves it out
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(dotted)
    except ModuleNotFoundError as exc:
        if exc.name and dotted.startswith(exc.name):
            raise SuiteError(
                f"unknown suite {dotted!r}: no module {exc.name!r} here or installed; "
                f"choose from {choices()}"
            ) from None
        raise SuiteError(f"cannot import suite module {dotted}: {_located(exc)}") from None
    except BaseException as exc:
        raise SuiteError(f"cannot import suite module {dotted}: {_located(exc)}") from None


def _located(exc: BaseException, path: str | None = None) -> str:
    """``file:line: Type: message`` of an exception, at its deepest frame in ``path``
    (or the deepest frame outside vecx and the import machinery)."""
    from vecx.suites import error_text

    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{exc.filename}:{exc.lineno}: SyntaxError: {exc.msg}"
    where = ""
    frames = traceback.extract_tb(exc.__traceback__)
    for frame in reversed(frames):
        if (path and frame.filename == path) or (
            not path
            and "importlib" not in frame.filename
            and os.sep + "vecx" + os.sep not in frame.filename
        ):
            where = f"{frame.filename}:{frame.lineno}: "
            break
    if isinstance(exc, SystemExit):
        return f"{where}it called sys.exit({exc.code!r})"
    return where + error_text(exc)


def as_suite(obj: Any, name: str) -> Suite:
    """A `Suite` from what a name found: a Suite, a module with ``SUITE``, workloads, or
    the older ``plan()``/``cases()`` pair."""
    from vecx.suites.workload import Workload, WorkloadSuite

    if isinstance(obj, Suite):
        return obj
    if isinstance(obj, Workload):
        return WorkloadSuite(name, [obj], source=obj.source)
    if isinstance(obj, ModuleType):
        found = getattr(obj, "SUITE", None)
        if isinstance(found, Suite):
            return found
        workloads = [v for v in vars(obj).values() if isinstance(v, Workload)]
        if workloads:
            named = str(getattr(obj, "NAME", None) or name)
            return WorkloadSuite(named, workloads, source=getattr(obj, "__file__", None))
        if callable(getattr(obj, "plan", None)) and callable(getattr(obj, "cases", None)):
            return ModuleSuite(obj, name)
        where = getattr(obj, "__file__", None) or obj.__name__
        raise SuiteError(
            f"{where} defines no workload: decorate a function with @vecx.workload "
            "(see the README, 'Benchmark your own code')"
        )
    raise SuiteError(f"suite {name!r} is a {type(obj).__name__}, not a module, Suite or workload")


def presentation(name: str) -> Suite:
    """The suite that presents records named ``name``: the built-in or installed one, or
    the generic presentation (a user's file need not be importable to plot its results)."""
    low = str(name).lower()
    if low in BUILTIN or low in OPT_IN or low in installed():
        try:
            return load(low)
        except SuiteError:
            pass
    suite = Suite()
    suite.name = str(name)
    return suite


def builtin_figures() -> list[FigureSpec]:
    """Every figure the built-in suites may draw (so an old run's files can be removed)."""
    return [spec for name in (*BUILTIN, *OPT_IN) for spec in load(name).figures]


__all__ = [
    "BUILTIN",
    "ENTRY_POINT_GROUP",
    "FigureSpec",
    "Finalized",
    "ModuleSuite",
    "OPT_IN",
    "Suite",
    "SuiteError",
    "as_suite",
    "choices",
    "installed",
    "load",
    "presentation",
]
