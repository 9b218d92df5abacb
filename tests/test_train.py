"""Tests of the trainer (vecx.training): d2l's results, identical runs across backends,
errors, the clock. Models of the user's own and the digits tasks: tests/test_models.py."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

import vecx
from vecx.training import DIVERGENCE_FACTOR, TASKS, History, init_params
from vecx.training import executors as executors_module

LINREG = vecx.PRESETS["linreg"]
CONTRACT_KEYS = [
    "preset", "backend", "optimizer", "executor", "mode", "compile_s", "compiles",
    "compute_dtype", "loss_scale", "skipped_steps", "workers", "engine",
    "threads_per_worker", "lr",
    "batch_size", "epochs", "examples",
    "losses", "times", "steps", "metrics", "loss", "epoch_time", "params", "dtype",
]  # fmt: skip


def native_fit(be, X, y, **kwargs):
    return vecx.fit(be, X, y, executor="native", **kwargs)


@pytest.fixture(scope="module")
def numpy_runs() -> dict[str, History]:
    """Every preset on NumPy, once: the reference the other backends must match."""
    be = vecx.backend("numpy")
    return {name: vecx.train(be, name) for name in vecx.PRESETS}


# --- model pieces ------------------------------------------------------------------------


def test_model_pieces_on_numpy() -> None:
    X = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    w = np.array([[1.0], [-1.0]], np.float32)
    b = np.array([0.5], np.float32)
    y_hat = vecx.linreg(X, w, b)
    np.testing.assert_allclose(y_hat, [[-0.5], [-0.5]])
    # y of shape (n,) is reshaped, not broadcast to (n, n)
    loss = vecx.squared_loss(y_hat, np.array([0.5, 1.5], np.float32))
    np.testing.assert_allclose(loss, [[0.5], [2.0]])
    new = vecx.sgd({"w": w, "b": b}, {"w": np.ones_like(w), "b": np.ones_like(b)}, 0.1)
    np.testing.assert_allclose(new["w"], [[0.9], [-1.1]])
    np.testing.assert_allclose(new["b"], [0.4])
    np.testing.assert_allclose(w, [[1.0], [-1.0]])  # functional: the input is untouched


def linreg_init(rng):
    return TASKS["linreg"].init(rng, 3, 1)


def test_init_params_same_on_every_backend(backend) -> None:
    p = init_params(backend, linreg_init, seed=5)
    ref = init_params(vecx.backend("numpy"), linreg_init, seed=5)
    np.testing.assert_array_equal(backend.to_numpy(p["w"]), ref["w"])
    assert tuple(p["w"].shape) == (3, 1) and tuple(p["b"].shape) == (1,)
    assert np.all(backend.to_numpy(p["b"]) == 0)
    assert 0.001 < np.std(ref["w"]) < 0.03


# --- d2l's results and cross-backend agreement --------------------------------------------


def test_linreg_reaches_d2l_result_and_matches_numpy(backend, numpy_runs) -> None:
    h = vecx.train(backend, "linreg")
    assert h.loss < 1e-4
    np.testing.assert_allclose(h.params["w"].ravel(), [2.0, -3.4], atol=2e-3)
    np.testing.assert_allclose(h.params["b"], [4.2], atol=2e-3)
    ref = numpy_runs["linreg"]
    # same data, init and minibatches: the same parameters to float32 rounding
    np.testing.assert_allclose(h.params["w"], ref.params["w"], rtol=1e-4)
    np.testing.assert_allclose(h.params["b"], ref.params["b"], rtol=1e-4)
    assert h.examples == ref.examples
    np.testing.assert_allclose(h.losses, ref.losses, rtol=1e-3)


@pytest.mark.parametrize("preset", ["airfoil-gd", "airfoil-sgd", "airfoil-mb100", "airfoil-mb10"])
def test_airfoil_presets_reach_d2l_loss(backend, numpy_runs, preset) -> None:
    h = vecx.train(backend, preset)
    assert abs(h.loss - vecx.PRESETS[preset].d2l_loss) < 0.01, h.loss
    ref = numpy_runs[preset]
    np.testing.assert_allclose(h.params["w"], ref.params["w"], rtol=1e-3, atol=1e-5)
    assert math.isclose(h.loss, ref.loss, rel_tol=1e-4)


def test_native_reference_trainers_agree_with_fit(backend) -> None:
    X, y = LINREG.load(backend)
    kwargs = {"lr": LINREG.lr, "batch_size": LINREG.batch_size, "epochs": LINREG.epochs}
    if backend.name not in ("torch", "jax"):
        with pytest.raises(NotImplementedError, match="torch and jax only"):
            native_fit(backend, X, y, **kwargs)
        return
    ours, native = vecx.fit(backend, X, y, **kwargs), native_fit(backend, X, y, **kwargs)
    np.testing.assert_allclose(native.params["w"], ours.params["w"], rtol=1e-4)
    np.testing.assert_allclose(native.params["b"], ours.params["b"], rtol=1e-4)
    assert native.examples == ours.examples
    np.testing.assert_allclose(native.losses, ours.losses, rtol=1e-3)
    assert native.loss < 1e-4


def test_native_fit_validates_like_fit() -> None:
    pytest.importorskip("torch")
    be = vecx.backend("torch")
    X, y = vecx.synthetic_data(be, [1.0], 0.0, 20)
    with pytest.raises(ValueError, match="lr"):
        native_fit(be, X, y, lr=0, batch_size=2, epochs=1)


# --- History and checkpoints --------------------------------------------------------------


def test_history_contract_and_json(numpy_runs) -> None:
    h = numpy_runs["linreg"]
    d = h.to_dict()
    assert list(d) == CONTRACT_KEYS
    assert d["preset"] == "linreg" and d["backend"] == "numpy:cpu"
    assert d["examples"] == list(range(200, 3001, 200))
    assert len(d["losses"]) == len(d["times"]) == len(d["examples"]) == 15
    assert d["loss"] == d["losses"][-1]
    assert all(b >= a for a, b in zip(d["times"], d["times"][1:], strict=False))
    assert d["epoch_time"] == pytest.approx(d["times"][-1] / 3)
    assert np.shape(d["params"]["w"]) == (2, 1) and np.shape(d["params"]["b"]) == (1,)
    text = json.dumps(d, allow_nan=False)  # strict JSON: finite numbers only
    back = History.from_dict(json.loads(text))
    assert back.to_dict() == d
    assert isinstance(h.params["w"], np.ndarray)


@pytest.mark.parametrize(
    ("batch", "log_every", "expected"),
    [
        (10, 200, list(range(200, 2001, 200))),
        (300, 200, [300, 600, 900, 1000, 1300, 1600, 1900, 2000]),  # crossings, then the end
        (10, 5000, [2000]),  # only the end
        (1000, 1, [1000, 2000]),
    ],
)
def test_checkpoints_every_log_every_examples_and_at_the_end(batch, log_every, expected) -> None:
    be = vecx.backend("numpy")
    X, y = vecx.synthetic_data(be, [1.0, 2.0], 0.5, 1000)
    seen = []
    h = vecx.fit(be, X, y, lr=0.01, batch_size=batch, epochs=2, log_every=log_every,
                 callback=seen.append)
    assert h.examples == expected
    assert [c.examples for c in seen] == expected
    assert [c.loss for c in seen] == h.losses
    assert seen[-1].epoch == 2 and seen[-1].total_examples == 2000
    assert h.steps[-1] == 2 * -(-1000 // batch)


def test_clock_stops_around_checkpoints() -> None:
    """A slow callback (like the whole-data evaluation) must not count as training."""
    be = vecx.backend("numpy")
    X, y = LINREG.load(be)
    started = time.perf_counter()
    h = vecx.fit(be, X, y, lr=0.03, batch_size=10, epochs=3, callback=lambda c: time.sleep(0.03))
    wall = time.perf_counter() - started
    assert wall > 15 * 0.03
    assert h.times[-1] < wall - 15 * 0.03 + 1e-3
    assert h.epoch_time > 0


def test_same_seed_same_run_other_seed_other_run() -> None:
    be = vecx.backend("numpy")
    a, b, c = (vecx.train(be, "airfoil-mb100", seed=s) for s in (1, 1, 2))
    np.testing.assert_array_equal(a.params["w"], b.params["w"])
    assert a.losses == b.losses
    assert not np.array_equal(a.params["w"], c.params["w"])


def test_replacement_trains_too(backend) -> None:
    h = vecx.train(backend, "linreg", replacement=True)
    assert h.loss < 1e-3
    assert h.examples[-1] == 3000


def test_float64_runs_keep_their_dtype() -> None:
    be = vecx.backend("numpy", dtype="float64")
    h = vecx.train(be, "linreg")
    assert h.params["w"].dtype == np.float64 and h.loss < 1e-4


def test_y_of_shape_n_is_accepted() -> None:
    be = vecx.backend("numpy")
    X, y = LINREG.load(be)
    h1 = vecx.fit(be, X, y.reshape(-1), lr=0.03, batch_size=10, epochs=1)
    h2 = vecx.fit(be, X, y, lr=0.03, batch_size=10, epochs=1)
    np.testing.assert_array_equal(h1.params["w"], h2.params["w"])


def test_compiled_step_is_built_once_per_backend(backend) -> None:
    """One compiled step per compiling backend, loss and optimizer: a second run (and
    another learning rate) reuses it, and it is warmed up (compiled) once per problem
    shape. Where nothing compiles, nothing is kept (no cache to grow)."""
    vecx.train(backend, "airfoil-gd", epochs=1)
    if not backend.capabilities.compiles:
        assert backend not in executors_module._cache
        return
    built = dict(executors_module._cache[backend])
    vecx.train(backend, "airfoil-gd", epochs=1, lr=0.5)
    assert dict(executors_module._cache[backend]) == built
    fns = next(f for f in built.values() if f.warmed)
    assert [key[1:4] for key in fns.warmed] == [((1500, 5), (1500, 1), 1500)]


def test_the_compiled_step_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("jax")
    monkeypatch.setattr(executors_module, "CACHE_SIZE", 4)  # the bound, not its size
    be = vecx.backend("jax")
    X, y = vecx.synthetic_data(be, [1.0], 0.0, 20)
    for k in range(executors_module.CACHE_SIZE + 5):  # a new loss function each time
        vecx.fit(be, X, y, loss=lambda p, X, y, k=k: ((X @ p["w"] - y) ** 2).mean(),
                 params={"w": np.zeros((1, 1), np.float32)}, lr=0.1, batch_size=20, epochs=1)
    assert len(executors_module._cache[be]) == executors_module.CACHE_SIZE


# --- bad input and divergence -------------------------------------------------------------


@pytest.fixture(scope="module")
def small() -> tuple[object, object, object]:
    be = vecx.backend("numpy")
    X, y = vecx.synthetic_data(be, [1.0, 2.0], 0.0, 50)
    return be, X, y


@pytest.mark.parametrize(
    ("override", "word"),
    [
        ({"lr": 0}, "lr"),
        ({"lr": -0.1}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"lr": float("inf")}, "lr"),
        ({"lr": True}, "lr"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 51}, "batch_size"),
        ({"batch_size": 2.0}, "batch_size"),
        ({"epochs": 0}, "epochs"),
        ({"log_every": 0}, "log_every"),
        ({"seed": -1}, "seed"),
    ],
)
def test_fit_rejects_bad_arguments(small, override, word) -> None:
    be, X, y = small
    kwargs = {"lr": 0.1, "batch_size": 5, "epochs": 1, **override}
    with pytest.raises(ValueError, match=word):
        vecx.fit(be, X, y, **kwargs)


def test_fit_rejects_bad_data(small) -> None:
    be, X, y = small
    kwargs = {"lr": 0.1, "batch_size": 5, "epochs": 1}
    with pytest.raises(ValueError, match="same number of rows: X has 50, y has 49"):
        vecx.fit(be, X, y[:49], **kwargs)
    with pytest.raises(ValueError, match="X must be a 2-D"):
        vecx.fit(be, X[:, 0], y, **kwargs)
    for name, bad in (("X", X.copy()), ("y", y.copy())):
        bad[3, 0] = np.nan if name == "X" else np.inf
        args = (bad, y) if name == "X" else (X, bad)
        with pytest.raises(ValueError, match=f"{name} contains 1 non-finite"):
            vecx.fit(be, *args, **kwargs)


def test_train_rejects_unknown_preset_and_override() -> None:
    be = vecx.backend("numpy")
    with pytest.raises(ValueError, match="unknown preset 'nope'; choose one of linreg"):
        vecx.train(be, "nope")
    with pytest.raises(ValueError, match="unknown override"):
        vecx.train(be, "linreg", learning_rate=0.1)


def test_presets_are_read_only() -> None:
    with pytest.raises(TypeError):
        vecx.PRESETS["mine"] = LINREG  # type: ignore[index]


def test_divergence_is_an_error_naming_step_epoch_and_lr(backend) -> None:
    with pytest.raises(vecx.TrainingDiverged) as info:
        vecx.train(backend, "airfoil-gd", lr=10)
    message = str(info.value)
    assert "step 4" in message and "epoch 4" in message and "lr=10" in message
    assert "lower the learning rate" in message
    assert "nan" not in message.lower()


def test_divergence_carries_the_history_so_far(backend) -> None:
    with pytest.raises(vecx.TrainingDiverged) as info:
        vecx.train(backend, "airfoil-gd", lr=10)  # diverges at the 4th checkpoint
    history = info.value.history
    assert history.diverged == str(info.value) and not history.interrupted
    assert history.examples == [1500, 3000, 4500] and len(history.losses) == 3
    doc = history.to_dict()
    json.dumps(doc, allow_nan=False)  # strict JSON: no nan anywhere
    assert doc["diverged"] == str(info.value) and "interrupted" not in doc
    assert doc["loss"] == history.losses[-1] and doc["epoch_time"] is None
    assert History.from_dict(doc).diverged == history.diverged


def test_a_run_stopped_before_its_first_checkpoint_has_no_loss_not_an_error() -> None:
    be = vecx.backend("numpy")
    with pytest.raises(vecx.TrainingDiverged) as info:
        vecx.train(be, "airfoil-mb10", lr=2)  # diverges within the first epoch
    history = info.value.history
    assert history.losses == [] and history.loss is None and history.epoch_time is None
    assert History.from_dict(history.to_dict()).loss is None


def test_ctrl_c_carries_the_history_so_far(backend) -> None:
    def stop_at_third(cp: vecx.Checkpoint) -> None:
        if len(seen) == 2:
            raise KeyboardInterrupt
        seen.append(cp)

    seen: list = []
    with pytest.raises(KeyboardInterrupt) as info:
        vecx.train(backend, "linreg", callback=stop_at_third)
    history = info.value.history  # type: ignore[attr-defined]
    assert history.interrupted and history.diverged is None
    assert history.examples == [200, 400, 600]  # the third was recorded before the callback
    doc = history.to_dict()
    assert doc["interrupted"] is True and doc["epoch_time"] is None
    assert np.isfinite(doc["params"]["w"]).all() and len(doc["params"]["b"]) == 1
    assert History.from_dict(doc).interrupted


def test_a_complete_history_has_no_partial_markers(numpy_runs) -> None:
    doc = numpy_runs["linreg"].to_dict()
    assert "interrupted" not in doc and "diverged" not in doc


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NumPy's own overflow warnings
def test_overflow_to_inf_is_reported_as_divergence() -> None:
    be = vecx.backend("numpy")
    X, y = vecx.synthetic_data(be, [1.0], 0.0, 20)
    with pytest.raises(vecx.TrainingDiverged, match=r"is not finite \(from .*\) at step 5, ep"):
        vecx.fit(be, X * np.float32(1e18), y, lr=1.0, batch_size=20, epochs=5)
    assert DIVERGENCE_FACTOR >= 1e3  # a real run never grows its loss that much


# --- layering ----------------------------------------------------------------------------


def test_trainer_modules_import_no_framework() -> None:
    code = (
        "import sys, vecx, vecx.data, vecx.training, vecx.native, vecx.native.torch,"
        " vecx.native.jax, vecx.commands.train;"
        "print([m for m in ('torch', 'jax', 'cupy') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=str(_root()))
    assert out.stdout.strip() == "[]"


def _root() -> object:
    from pathlib import Path

    return Path(__file__).resolve().parent.parent


def test_modules_and_functions_have_distinct_names() -> None:
    """``vecx.train`` (a function) and ``vecx.training`` (its module), ``vecx.backends``
    (the package) and ``vecx.list_backends`` (a function): no name is both, so importing
    a module can never replace a function (or the other way round)."""
    code = (
        "import vecx.training, vecx; vecx.backend('numpy'); import vecx.backends.numpy;"
        "import types;"
        "print(callable(vecx.train), isinstance(vecx.training, types.ModuleType),"
        " 'linreg' in vecx.training.PRESETS, isinstance(vecx.backends, types.ModuleType),"
        " vecx.list_backends()[0].spec)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=str(_root()))
    assert out.stdout.split() == ["True", "True", "True", "True", "numpy:cpu"]


def test_numpy_divergence_raises_no_floating_point_warnings() -> None:
    """Overflow on the way to divergence is reported once, as TrainingDiverged, not as
    NumPy RuntimeWarnings from the autodiff and the loss first."""
    be = vecx.backend("numpy")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the run
        with pytest.raises(vecx.TrainingDiverged, match="not finite"):
            vecx.train(be, "linreg", lr=1e6)
    assert np.geterr()["over"] == "warn"  # the caller's NumPy settings are left as they were


def test_an_infinite_initial_loss_is_divergence_not_a_result() -> None:
    import numpy as np

    be = vecx.backend("numpy")
    X = np.full((20, 2), 1e30, np.float32)  # finite, but its squared error overflows
    y = np.ones((20, 1), np.float32)
    with pytest.raises(vecx.TrainingDiverged, match="training cannot start.*initial parameters"):
        vecx.fit(be, X, y, lr=0.03, batch_size=10, epochs=1)
