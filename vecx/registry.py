"""Backend specs ("torch:cuda:0"), lazy construction, discovery and plugins.

A spec is ``<name>[:<device>]``. Devices are ``cpu``, ``cuda`` or ``cuda:N``; ``gpu`` is an
alias of ``cuda``, and ``cuda`` means ``cuda:0``. Built-in backends live in
``vecx.backends``; third parties add theirs through the ``vecx.backends`` entry-point
group (see ``BackendEntry``). Nothing here imports a framework until a backend is built
or its availability is asked for.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import threading
import types
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from vecx.protocol import (
    DEFAULT_DTYPE,
    Backend,
    BackendUnavailable,
    describe_missing,
    missing_members,
)

ENTRY_POINT_GROUP = "vecx.backends"


@dataclass(frozen=True)
class BackendEntry:
    """How to build one backend and which devices it can run on.

    ``factory(device, seed=..., dtype=..., precision=...)`` returns a ``Backend``;
    ``probe(device)`` returns ``None`` when the device can be used, else the reason why
    not (raising ``BackendUnavailable`` works too). A plugin's entry point may name a
    ``BackendEntry`` or a class with the same attributes (``devices``, ``default_device``,
    optional ``module``, ``extra`` and ``probe``); there ``probe`` must be a
    ``@staticmethod`` or ``@classmethod``, since it runs before any instance exists.
    """

    name: str
    factory: Callable[..., Backend]
    devices: tuple[str, ...] = ("cpu",)  # device kinds: "cpu" and/or "cuda"
    default_device: str = "cpu"
    module: str | None = None  # the framework's import name, to tell "not installed"
    extra: str | None = None  # pip extra that installs it: vecx[<extra>]
    probe: Callable[[str], str | None] | None = None


def _lazy(path: str) -> Callable[..., Backend]:
    """A factory that imports ``module:Class`` only when called."""

    def factory(device: str, **kwargs: Any) -> Backend:
        module, _, cls = path.partition(":")
        return getattr(importlib.import_module(module), cls)(device, **kwargs)

    factory.__qualname__ = f"lazy({path})"
    return factory


def _probe(path: str) -> Callable[[str], str | None]:
    def probe(device: str) -> str | None:
        module, _, fn = path.partition(":")
        return getattr(importlib.import_module(module), fn)(device)

    return probe


_BUILTIN = (
    BackendEntry("numpy", _lazy("vecx.backends.numpy:NumpyBackend"), ("cpu",), "cpu", "numpy"),
    BackendEntry(
        "torch", _lazy("vecx.backends.torch:TorchBackend"), ("cpu", "cuda"), "cpu", "torch",
        "torch", _probe("vecx.backends.torch:probe"),
    ),
    BackendEntry(
        "jax", _lazy("vecx.backends.jax:JaxBackend"), ("cpu", "cuda"), "cpu", "jax",
        "jax", _probe("vecx.backends.jax:probe"),
    ),
    BackendEntry(
        "cupy", _lazy("vecx.backends.cupy:CupyBackend"), ("cuda",), "cuda", "cupy",
        "cupy12", _probe("vecx.backends.cupy:probe"),
    ),
)

_lock = threading.RLock()
_entries: dict[str, BackendEntry] = {e.name: e for e in _BUILTIN}
_plugins_loaded = False


def register(entry: BackendEntry, *, replace: bool = False) -> None:
    """Add a backend at run time (entry points do this for installed plugins)."""
    with _lock:
        if entry.name in _entries and not replace:
            raise ValueError(f"a backend named {entry.name!r} is already registered")
        _entries[entry.name] = entry


class NotABackend(TypeError):
    """A plugin's entry point loaded an object vecx cannot use as a backend."""


def _entry_from_object(name: str, obj: Any) -> BackendEntry:
    if isinstance(obj, BackendEntry):
        return obj
    if isinstance(obj, type) and isinstance(
        inspect.getattr_static(obj, "probe", None), types.FunctionType
    ):  # called as probe(device) it would fail on every device with a confusing TypeError
        raise NotABackend(
            f"{obj.__qualname__}.probe is an instance method, but vecx calls probe(device) "
            "before building the backend: make it a @staticmethod or @classmethod"
        )
    if isinstance(obj, type) and (missing := missing_members(obj)):
        raise NotABackend(describe_missing(f"its class {obj.__module__}.{obj.__qualname__}",
                                         missing))  # fmt: skip
    return BackendEntry(
        name=name,
        factory=obj,
        devices=tuple(getattr(obj, "devices", ("cpu",))),
        default_device=getattr(obj, "default_device", "cpu"),
        module=getattr(obj, "module", None),
        extra=getattr(obj, "extra", None),
        probe=getattr(obj, "probe", None),
    )


def _load_plugins() -> None:
    global _plugins_loaded
    with _lock:
        if _plugins_loaded:
            return
        _plugins_loaded = True
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            name = str(ep.name).strip().lower()  # specs are matched in lower case
            if not _VALID_NAME.fullmatch(name):
                import warnings

                warnings.warn(f"vecx: plugin backend {ep.name!r} ignored: a backend name is "
                              "a letter, then letters, digits or _ (it is written before "
                              "':device' in specs)", RuntimeWarning, stacklevel=2)  # fmt: skip
                continue
            if name in _entries:
                continue  # built-ins win; a plugin cannot shadow them by accident
            try:
                _entries[name] = _entry_from_object(name, ep.load())
                continue
            except NotABackend as exc:  # loaded, but not something vecx can call
                reason = str(exc)
            except (Exception, SystemExit) as exc:  # a broken plugin must not break vecx
                reason = f"its plugin failed to load: {exc!r}"
            _entries[name] = BackendEntry(
                name, _broken(name, reason), ("cpu",), "cpu",
                probe=lambda device, reason=reason: reason,  # vecx.list_backends() says why
            )


def _broken(name: str, reason: str) -> Callable[..., Backend]:
    def factory(device: str, **kwargs: Any) -> Backend:
        raise BackendUnavailable(f"{name}:{device}", reason)

    return factory


def entries() -> dict[str, BackendEntry]:
    """All known backends, plugins included, by name."""
    _load_plugins()
    with _lock:
        return dict(_entries)


def parse_spec(spec: str) -> tuple[BackendEntry, str]:
    """Split ``"torch:cuda"`` into its entry and canonical device (``"cuda:0"``)."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"a backend spec is a string like 'torch:cuda', got {spec!r}")
    name, _, device = "".join(spec.split()).lower().partition(":")  # " Torch : GPU "
    known = entries()
    if name not in known:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(known)}")
    entry = known[name]
    return entry, canonical_device(entry, device or entry.default_device)


def baseline_label(text: str) -> str:
    """A backend name (``numpy``) or spec (``torch:cuda``) as tables label records:
    lower case, the device canonical (``torch:cuda:0``); ``ValueError`` if unknown."""
    text = "".join(str(text).split()).lower()
    entry, device = parse_spec(text)
    return entry.name if ":" not in text else f"{entry.name}:{device}"


def canonical_device(entry: BackendEntry, device: str) -> str:
    kind, _, ordinal = device.partition(":")
    kind = "cuda" if kind == "gpu" else kind
    valid = ", ".join(f"{entry.name}:{d}" for d in entry.devices)
    if kind not in ("cpu", "cuda") or (kind == "cpu" and ordinal) or (
        ordinal and not ordinal.isdigit()
    ):
        raise ValueError(f"unknown device {device!r} for {entry.name}; choose one of {valid}")
    if kind not in entry.devices:
        raise ValueError(f"{entry.name} does not run on {kind}; choose one of {valid}")
    return f"cuda:{int(ordinal or 0)}" if kind == "cuda" else "cpu"


def backend(
    spec: str = "numpy",
    *,
    seed: int = 0,
    dtype: str = DEFAULT_DTYPE,
    precision: str = "float32",
) -> Backend:
    """Build a backend from a spec such as ``"numpy"``, ``"jax:cpu"`` or ``"torch:cuda:0"``.

    Raises ``ValueError`` for an unknown name, device or dtype, and
    ``BackendUnavailable`` (with the install hint) when the framework or device is missing.
    """
    entry, device = parse_spec(spec)
    check_installed(entry, f"{entry.name}:{device}")
    be = entry.factory(device, seed=seed, dtype=dtype, precision=precision)
    if missing := missing_members(be):  # a plugin's object: fail here, not mid-run
        what = f"the object its factory built ({type(be).__module__}.{type(be).__qualname__})"
        raise BackendUnavailable(f"{entry.name}:{device}", describe_missing(what, missing))
    return be


def check_installed(entry: BackendEntry, spec: str) -> None:
    """Raise ``BackendUnavailable`` (with the install hint) if the framework is not
    installed; asks the import system only, importing nothing."""
    if entry.module and importlib.util.find_spec(entry.module) is None:
        hint = f'pip install "vecx[{entry.extra}]"' if entry.extra else ""
        raise BackendUnavailable(spec, f"{entry.module} is not installed", hint)


@dataclass(frozen=True)
class BackendStatus:
    """One backend x device as ``vecx.list_backends()`` reports it."""

    spec: str
    name: str
    device: str
    available: bool
    reason: str = ""
    version: str | None = None

    @property
    def id(self) -> str:
        """Test id: ``numpy``, ``torch-cpu``, ``cupy-cuda``."""
        if self.name == "numpy" and self.device == "cpu":
            return "numpy"
        return self.spec.replace(":", "-")


def status(spec: str) -> BackendStatus:
    """Whether ``spec`` can run here, and why not; imports the framework to find out."""
    entry, device = parse_spec(spec)
    kind = device.split(":")[0]
    canonical = f"{entry.name}:{kind if device == 'cuda:0' else device}"
    try:
        check_installed(entry, canonical)
        reason = _probe(entry, device) if entry.probe else None
    except BackendUnavailable as exc:
        reason = exc.reason + (f" ({exc.hint})" if exc.hint else "")
    except (Exception, SystemExit) as exc:  # a probe must never take discovery down
        reason = f"{type(exc).__name__}: {exc}"
    return BackendStatus(
        canonical, entry.name, device, reason is None, reason or "", _version(entry)
    )


#: A backend name as specs write it.
_VALID_NAME = re.compile(r"[a-z][a-z0-9_]*")
#: Seconds a plugin's probe may take before its backend counts as unavailable.
PROBE_LIMIT_S = 10.0


def _probe(entry: BackendEntry, device: str) -> str | None:
    """``entry.probe(device)`` for built-ins; a plugin's on a thread, within
    `PROBE_LIMIT_S`, so a probe that hangs makes only its own backend unavailable."""
    if any(entry is b for b in _BUILTIN):
        return entry.probe(device)
    found: list[Any] = []

    def call() -> None:
        try:
            found.append(("ok", entry.probe(device)))
        except BaseException as exc:  # noqa: BLE001 - reported as the backend's reason
            found.append(("error", exc))

    worker = threading.Thread(target=call, name=f"probe {entry.name}", daemon=True)
    worker.start()
    worker.join(PROBE_LIMIT_S)
    if not found:
        return f"its probe did not answer within {PROBE_LIMIT_S:g} s"
    kind, value = found[0]
    if kind == "error":
        if isinstance(value, BackendUnavailable):
            raise value
        return f"{type(value).__name__}: {value}"
    return value


def _version(entry: BackendEntry) -> str | None:
    if not entry.module:
        return None
    try:
        from importlib.metadata import version

        dist = {"cupy": _cupy_dist()}.get(entry.module, entry.module)
        return version(dist) if dist else None
    except Exception:
        return None


def _cupy_dist() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    for dist in ("cupy-cuda12x", "cupy-cuda13x", "cupy-cuda11x", "cupy"):
        try:
            version(dist)
            return dist
        except PackageNotFoundError:
            continue
    return None


def all_specs() -> list[str]:
    """Every known backend x device kind as a spec (``"torch:cuda"``), in registry order:
    the one place that enumerates them (``vecx info``, ``vecx bench``, the fixture)."""
    return [f"{e.name}:{kind}" for e in entries().values() for kind in e.devices]


def list_backends() -> list[BackendStatus]:
    """Every known backend x device kind, with availability and the reason when not."""
    return [status(spec) for spec in all_specs()]
