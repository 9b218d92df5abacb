"""Backend specs, discovery, missing frameworks and devices, plugins, thread safety."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import vecx
from vecx import registry
from vecx.registry import BackendEntry, parse_spec

REPO = Path(__file__).resolve().parents[1]
BUILTIN_SPECS = ["numpy:cpu", "torch:cpu", "torch:cuda", "jax:cpu", "jax:cuda", "cupy:cuda"]


@pytest.fixture
def scratch_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Let a test register backends without leaking them into other tests."""
    registry.entries()  # load installed plugins first, so the copy holds them
    monkeypatch.setattr(registry, "_entries", dict(registry._entries))
    yield


class Stub:
    """A plugin backend for tests: NumPy's, under its own name and a label of its making."""

    devices = ("cpu",)

    def __init__(self, device: str, label: Any = None, **kwargs: Any) -> None:
        self._inner = vecx.backend("numpy", **kwargs)
        self.name, self.device, self.label = "stub", device, label

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._inner, attr)


def available(spec: str) -> bool:
    return any(s.spec == spec and s.available for s in vecx.list_backends())


# --------------------------------------------------------------------------- specs


@pytest.mark.parametrize(
    ("spec", "name", "device"),
    [
        ("numpy", "numpy", "cpu"),
        ("numpy:cpu", "numpy", "cpu"),
        ("torch", "torch", "cpu"),
        ("torch:cuda", "torch", "cuda:0"),
        ("torch:gpu", "torch", "cuda:0"),
        ("torch:cuda:1", "torch", "cuda:1"),
        ("jax:gpu:2", "jax", "cuda:2"),
        ("jax:cuda:007", "jax", "cuda:7"),
        ("cupy", "cupy", "cuda:0"),
        ("cupy:gpu", "cupy", "cuda:0"),
        ("NumPy", "numpy", "cpu"),
        ("TORCH:GPU:1", "torch", "cuda:1"),
        ("  jax:CPU \n", "jax", "cpu"),
        (" torch : cuda : 0 ", "torch", "cuda:0"),
    ],
)
def test_parse_spec(spec: str, name: str, device: str) -> None:
    entry, canonical = parse_spec(spec)
    assert (entry.name, canonical) == (name, device)


@pytest.mark.parametrize("spec", ["tensorflow", "numpyy", "torch-cpu", "mx:cpu"])
def test_unknown_backend_lists_the_choices(spec: str) -> None:
    with pytest.raises(ValueError, match="unknown backend") as err:
        vecx.backend(spec)
    for name in ("numpy", "torch", "jax", "cupy"):
        assert name in str(err.value)


@pytest.mark.parametrize(
    ("spec", "choices"),
    [
        ("torch:tpu", "torch:cpu, torch:cuda"),
        ("jax:cpu:1", "jax:cpu, jax:cuda"),
        ("torch:cuda:x", "torch:cpu, torch:cuda"),
        ("torch:cuda:-1", "torch:cpu, torch:cuda"),
        ("torch:cuda:0:1", "torch:cpu, torch:cuda"),
        ("numpy:cuda", "numpy:cpu"),
        ("numpy:gpu", "numpy:cpu"),
        ("cupy:cpu", "cupy:cuda"),
    ],
)
def test_unknown_device_lists_the_choices(spec: str, choices: str) -> None:
    with pytest.raises(ValueError, match=f"choose one of {choices}$"):
        vecx.backend(spec)


@pytest.mark.parametrize("spec", ["", "   ", None, 3, ("numpy",)])
def test_spec_must_be_a_string(spec: Any) -> None:
    with pytest.raises(ValueError, match="a backend spec is a string"):
        vecx.backend(spec)


# --------------------------------------------------------------------------- unavailable


def test_not_installed_gives_the_pip_hint(scratch_registry: None) -> None:
    vecx.register(
        BackendEntry("fake", lambda device, **kw: pytest.fail("built"), ("cpu", "cuda"),
                     module="surely_not_installed_pkg", extra="fake")
    )
    with pytest.raises(vecx.BackendUnavailable) as err:
        vecx.backend("fake:gpu")
    exc = err.value
    assert exc.spec == "fake:cuda:0"
    assert exc.reason == "surely_not_installed_pkg is not installed"
    assert exc.hint == 'pip install "vecx[fake]"'
    assert 'pip install "vecx[fake]"' in str(exc)
    assert isinstance(exc, vecx.VecxError) and isinstance(exc, RuntimeError)
    st = registry.status("fake")
    assert not st.available and st.version is None
    assert st.reason == 'surely_not_installed_pkg is not installed (pip install "vecx[fake]")'


@pytest.mark.parametrize(("name", "extra"), [("jax", "jax"), ("torch", "torch"),
                                             ("cupy", "cupy12")])
def test_missing_framework_is_unavailable_not_an_import_error(
    monkeypatch: pytest.MonkeyPatch, name: str, extra: str
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda mod, *a: None if mod == name else real(mod, *a)
    )
    with pytest.raises(vecx.BackendUnavailable, match=rf'pip install "vecx\[{extra}\]"'):
        vecx.backend(name)
    for st in vecx.list_backends():
        if st.name == name:
            assert not st.available and f"{name} is not installed" in st.reason


def test_cupy_without_a_gpu_is_unavailable_with_the_reason() -> None:
    if importlib.util.find_spec("cupy") is None:
        pytest.skip("cupy is not installed")
    import cupy

    if cupy.cuda.is_available():
        be = vecx.backend("cupy")  # with a GPU: it simply works
        assert be.device == "cuda:0"
        return
    for spec in ("cupy", "cupy:cuda:1", "cupy:gpu"):
        with pytest.raises(vecx.BackendUnavailable) as err:
            vecx.backend(spec)
        exc = err.value
        assert "cupy.cuda.is_available() is False" in exc.reason
        assert exc.__cause__ is None and exc.__context__ is None
        frames = traceback.extract_tb(exc.__traceback__)
        assert not any(f"{os.sep}cupy{os.sep}" in f.filename for f in frames), frames
    (st,) = [s for s in vecx.list_backends() if s.spec == "cupy:cuda"]
    assert not st.available and "is_available() is False" in st.reason
    assert st.version  # installed: the version of the cupy-cudaXXx distribution


def test_cupy_probe_turns_cuda_errors_into_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    if importlib.util.find_spec("cupy") is None:
        pytest.skip("cupy is not installed")
    import cupy
    from cupy_backends.cuda.api.runtime import CUDARuntimeError

    from vecx.backends.cupy import probe

    def no_driver() -> bool:
        raise CUDARuntimeError(35)  # cudaErrorInsufficientDriver

    monkeypatch.setattr(cupy.cuda, "is_available", no_driver)
    reason = probe("cuda:0")
    assert reason is not None and reason.startswith("CUDA is not usable by cupy:")
    with pytest.raises(vecx.BackendUnavailable, match="CUDA is not usable by cupy"):
        vecx.backend("cupy")


# --------------------------------------------------------------------------- discovery


def test_backends_lists_every_builtin_backend_and_device() -> None:
    found = vecx.list_backends()
    specs = [s.spec for s in found]
    assert specs[: len(BUILTIN_SPECS)] == BUILTIN_SPECS
    assert [s.id for s in found[:6]] == [
        "numpy", "torch-cpu", "torch-cuda", "jax-cpu", "jax-cuda", "cupy-cuda",
    ]
    for st in found:
        assert isinstance(st, vecx.BackendStatus)
        assert isinstance(st.available, bool)
        assert st.spec.startswith(f"{st.name}:")
        assert st.device == "cpu" or st.device.startswith("cuda:")
        assert (st.reason == "") == st.available, st  # a reason exactly when unavailable
        if st.available:
            assert st.version
    (numpy_status,) = [s for s in found if s.spec == "numpy:cpu"]
    assert numpy_status.available and numpy_status.version == np.__version__


def test_available_backends_can_be_built_and_report_their_spec() -> None:
    for st in vecx.list_backends():
        if st.available and st.name in ("numpy", "torch", "jax", "cupy"):
            be = vecx.backend(st.spec)
            assert (be.name, be.device) == (st.name, st.device)


def test_register_refuses_a_duplicate_name(scratch_registry: None) -> None:
    entry = BackendEntry("numpy", lambda device, **kw: None)
    with pytest.raises(ValueError, match="already registered"):
        vecx.register(entry)
    vecx.register(BackendEntry("mine", lambda device, **kw: Stub(device, "built", **kw)))
    with pytest.raises(ValueError, match="already registered"):
        vecx.register(BackendEntry("mine", lambda device, **kw: None))
    vecx.register(BackendEntry("mine", lambda device, **kw: Stub(device, "again", **kw)),
                  replace=True)  # fmt: skip
    assert vecx.backend("mine").label == "again"


# --------------------------------------------------------------------------- plugins

PLUGIN = '''
"""A third-party backend: wraps vecx's NumPy backend by delegation, subclasses nothing."""
import vecx


class MyBackend:
    devices = ("cpu",)
    default_device = "cpu"

    def __init__(self, device, **kwargs):
        self._inner = vecx.backend("numpy", **kwargs)
        self.name, self.device, self.dtype = "mybe", device, self._inner.dtype

    @property
    def spec(self):
        return f"{self.name}:{self.device}"

    def __getattr__(self, attr):
        return getattr(self._inner, attr)


ENTRY = vecx.BackendEntry("mybe2", lambda device, **kw: MyBackend(device, **kw))
'''

ENTRY_POINTS = """
[vecx.backends]
mybe = mybe_pkg:MyBackend
mybe2 = mybe_pkg:ENTRY
numpy = mybe_pkg:MyBackend
broken = surely_missing_module_xyz:Backend
"""

CHECK = '''
import json
import numpy as np
import vecx
from vecx.testing import all_specs

out = {}
be = vecx.backend("mybe", seed=3)
out["protocol"] = isinstance(be, vecx.Backend)
out["spec"] = be.spec
x = be.normal(0.0, 1.0, (4, 2))
again = vecx.backend("MyBe:cpu", seed=3)
out["seeded"] = bool(np.array_equal(x, again.normal(0.0, 1.0, (4, 2))))
g = be.grad(lambda w: (be.matmul(x, w) ** 2).sum())(be.ones((2, 1)))
out["grad"] = bool(np.allclose(g, 2 * x.T @ (x @ np.ones((2, 1))), rtol=1e-5))
out["index"] = be.to_numpy(be.index(x, [1, 1])).tolist() == x[[1, 1]].tolist()
out["entry_object"] = vecx.backend("mybe2").spec
out["numpy_not_shadowed"] = type(vecx.backend("numpy")).__name__
out["status"] = {s.spec: [s.available, s.reason] for s in vecx.list_backends()}
try:
    vecx.backend("broken")
    out["broken"] = "built"
except vecx.BackendUnavailable as exc:
    out["broken"] = str(exc)
out["fixture_specs"] = all_specs()
print(json.dumps(out))
'''


def test_entry_point_plugin_works_everywhere(tmp_path: Path) -> None:
    (tmp_path / "mybe_pkg.py").write_text(PLUGIN)
    dist = tmp_path / "mybe-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mybe\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}
    proc = subprocess.run(
        [sys.executable, "-c", CHECK], env=env, capture_output=True, text=True, timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.splitlines()[-1])
    assert out["protocol"] is True
    assert out["spec"] == "mybe:cpu"
    assert out["seeded"] and out["grad"] and out["index"]
    assert out["entry_object"] == "mybe:cpu"  # a BackendEntry object works too
    assert out["numpy_not_shadowed"] == "NumpyBackend"  # built-ins win over plugins
    assert out["status"]["mybe:cpu"] == [True, ""]
    assert out["status"]["mybe2:cpu"] == [True, ""]
    available_flag, reason = out["status"]["broken:cpu"]
    assert available_flag is False and "surely_missing_module_xyz" in reason
    assert "backend 'broken:cpu' is unavailable: its plugin failed to load" in out["broken"]
    assert "surely_missing_module_xyz" in out["broken"]
    assert {"mybe:cpu", "mybe2:cpu", "broken:cpu"} <= set(out["fixture_specs"])
    assert out["fixture_specs"][:6] == BUILTIN_SPECS


def test_plugin_class_probe_must_not_be_an_instance_method(
    scratch_registry: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    class InstanceProbe(Stub):
        def probe(self, device: str) -> str | None:
            return None

    class StaticProbe(InstanceProbe):
        probe = staticmethod(lambda device: f"{device} is busy")  # type: ignore[assignment]

    class ClassProbe(InstanceProbe):
        @classmethod
        def probe(cls, device: str) -> str | None:  # type: ignore[override]
            return None

    class EntryPoint:
        def __init__(self, name: str, obj: Any) -> None:
            self.name, self.obj = name, obj

        def load(self) -> Any:
            return self.obj

    plugins = [EntryPoint("inst", InstanceProbe), EntryPoint("stat", StaticProbe),
               EntryPoint("clsm", ClassProbe)]
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    monkeypatch.setattr(registry, "entry_points", lambda group: plugins)
    state = registry.status("inst:cpu")
    assert not state.available
    assert "InstanceProbe.probe is an instance method" in state.reason
    assert "@staticmethod or @classmethod" in state.reason
    with pytest.raises(vecx.BackendUnavailable, match="instance method"):
        vecx.backend("inst")
    assert registry.status("stat:cpu").reason == "cpu is busy"
    assert registry.status("clsm:cpu").available
    assert vecx.backend("clsm").device == "cpu"


# --------------------------------------------------------------------------- threads


def test_backends_build_concurrently() -> None:
    specs = [s for s in ("numpy:cpu", "torch:cpu", "jax:cpu") if available(s)]
    jobs = [specs[i % len(specs)] for i in range(24)]

    def build(spec: str) -> Any:
        be = vecx.backend(spec, seed=1)
        return be, be.to_numpy(be.normal(0.0, 1.0, 3))

    with ThreadPoolExecutor(max_workers=8) as pool:
        built = list(pool.map(build, jobs))
    assert len({id(be) for be, _ in built}) == len(jobs)  # distinct objects
    for spec in specs:  # and each one seeded on its own generator
        draws = [d for (be, d), s in zip(built, jobs, strict=True) if s == spec]
        assert all(np.array_equal(draws[0], d) for d in draws)


def test_plugins_load_once_under_concurrency(
    scratch_registry: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads = []

    class FakeEntryPoint:
        name = "slowbe"

        def load(self) -> Any:
            loads.append(1)
            time.sleep(0.05)  # wide open for a thread that does not wait for the loader
            return BackendEntry("slowbe", lambda device, **kw: Stub(device, "slow"))

    monkeypatch.setattr(registry, "_plugins_loaded", False)
    monkeypatch.setattr(registry, "entry_points", lambda group: [FakeEntryPoint()])
    with ThreadPoolExecutor(max_workers=8) as pool:
        seen = list(pool.map(lambda _: registry.entries(), range(32)))
    assert len(loads) == 1
    assert all("slowbe" in s and "numpy" in s for s in seen)
    assert vecx.backend("slowbe").label == "slow"



def test_a_plugin_can_only_break_itself(scratch_registry: None,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """sys.exit at import, a probe that hangs, a mixed-case name and a name with ':' each
    make that plugin unavailable (or ignored, with one warning), never vecx."""

    class EntryPoint:
        def __init__(self, name: str, load: Any) -> None:
            self.name, self.load = name, load

    def exits() -> Any:
        raise SystemExit(3)

    class Slow(Stub):
        @staticmethod
        def probe(device: str) -> str | None:
            time.sleep(30)
            return None

    class Fine(Stub):
        pass

    class Half:  # a class with a few of the protocol's methods
        def __init__(self, device: str, **kw: Any) -> None:
            self.device = device

        def ones(self, shape: Any, dtype: Any = None) -> Any:
            return np.ones(shape)

    class HalfWrapper(Stub):  # delegates, but to an object lacking the methods
        def __init__(self, device: str, **kw: Any) -> None:
            self._inner, self.device = object(), device

    plugins = [EntryPoint("quitter", exits), EntryPoint("sleepy", lambda: Slow),
               EntryPoint("Torch2", lambda: Fine), EntryPoint("my:backend", lambda: Fine),
               EntryPoint("half", lambda: Half), EntryPoint("halfwrap", lambda: HalfWrapper)]
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    monkeypatch.setattr(registry, "entry_points", lambda group: plugins)
    monkeypatch.setattr(registry, "PROBE_LIMIT_S", 0.2)
    with pytest.warns(RuntimeWarning, match="plugin backend 'my:backend' ignored"):
        names = registry.entries()
    assert "my:backend" not in names and "torch2" in names
    assert "SystemExit(3)" in registry.status("quitter:cpu").reason
    t0 = time.monotonic()
    assert "did not answer within 0.2 s" in registry.status("sleepy:cpu").reason
    assert time.monotonic() - t0 < 5
    assert vecx.backend("Torch2").device == "cpu"
    # a class missing methods is unavailable, saying which, before anything is built
    half = registry.status("half:cpu")
    assert not half.available and "Half lacks 31 of vecx.Backend's members: abs," in half.reason
    with pytest.raises(vecx.BackendUnavailable, match="Half lacks 31"):
        vecx.backend("half")
    # an object that only turns out incomplete when built fails at construction
    with pytest.raises(vecx.BackendUnavailable, match=r"HalfWrapper\) lacks 34 .*: abs, "):
        vecx.backend("halfwrap")
    assert registry.status("numpy:cpu").available  # the built-ins untouched
