"""vecx.fit for any model: models a user writes (logistic regression, softmax regression,
an MLP), the digits tasks, optimizers, parameter pytrees, and the segment seam."""

from __future__ import annotations

import collections
import json
from typing import Any

import numpy as np
import pytest

import vecx
from vecx.pytree import leaves
from vecx.training import History, Problem, StepExecutor

CPU = ("numpy", "torch", "jax")


def cpu_backends() -> list[Any]:
    return [vecx.backend(s.spec) for s in vecx.list_backends()
            if s.available and s.name in CPU and s.device == "cpu"]  # fmt: skip


def two_blobs(be: Any, n: int = 200) -> tuple[Any, Any]:
    """Two Gaussian blobs in 2-D: a binary classification any logistic model separates."""
    rng = np.random.default_rng(7)
    labels = (np.arange(n) % 2).astype(np.float32)
    X = rng.standard_normal((n, 2)) + np.where(labels[:, None] > 0, 1.5, -1.5)
    return be.asarray(X.astype(np.float32)), be.asarray(labels.reshape(-1, 1))


# --- models written by a user ---------------------------------------------------------------


def logistic(be: Any) -> tuple[Any, Any, Any]:
    def loss(params: Any, X: Any, y: Any) -> Any:
        p = be.sigmoid(X @ params["w"] + params["b"])
        p = be.clip(p, 1e-7, 1 - 1e-7)
        return -be.mean(y * be.log(p) + (1 - y) * be.log(1 - p))

    def accuracy(params: Any, X: Any, y: Any) -> Any:
        predicted = be.astype(X @ params["w"] + params["b"] > 0, be.dtype)
        return be.mean(be.astype(predicted == y, be.dtype))

    params = {"w": np.zeros((2, 1), np.float32), "b": np.zeros(1, np.float32)}
    return loss, params, {"accuracy": accuracy}


def softmax_regression(be: Any) -> tuple[Any, Any, Any]:
    def loss(params: Any, X: Any, Y: Any) -> Any:
        Z = X @ params[0] + params[1]
        return be.mean(be.logsumexp(Z, axis=1) - be.sum(Y * Z, axis=1))

    def init(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return rng.normal(0.0, 0.01, (64, 10)), np.zeros(10)

    return loss, init, {}


MLPParams = collections.namedtuple("MLPParams", "hidden out")


def mlp(be: Any) -> tuple[Any, Any, Any]:
    def loss(params: Any, X: Any, Y: Any) -> Any:
        H = be.tanh(X @ params.hidden["W"] + params.hidden["b"])
        H = be.maximum(H, 0.1 * H)  # a leaky ReLU on top: maximum with a scalar multiple
        Z = H @ params.out["W"] + params.out["b"]
        return be.mean(be.logsumexp(Z, axis=1) - be.sum(Y * Z, axis=1))

    def init(rng: np.random.Generator) -> MLPParams:
        return MLPParams(
            hidden={"W": rng.standard_normal((64, 32)) / 8, "b": np.zeros(32)},
            out={"W": rng.standard_normal((32, 10)) / np.sqrt(32), "b": np.zeros(10)},
        )

    return loss, init, {}


def final_params(h: History) -> list[np.ndarray]:
    return [np.asarray(leaf) for leaf in leaves(h.params)]


def test_a_users_logistic_regression_trains_the_same_everywhere() -> None:
    runs = {}
    for be in cpu_backends():
        loss, params, metrics = logistic(be)
        X, y = two_blobs(be)
        runs[be.spec] = vecx.fit(be, X, y, loss=loss, params=params, metrics=metrics,
                                 lr=0.5, batch_size=20, epochs=5, log_every=100)  # fmt: skip
    reference = runs.pop("numpy:cpu")
    assert reference.accuracy > 0.95 and reference.loss < 0.2
    assert set(reference.params) == {"w", "b"} and reference.params["w"].shape == (2, 1)
    for spec, h in runs.items():
        for got, want in zip(final_params(h), final_params(reference), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6, err_msg=spec)
        assert h.metrics["accuracy"] == pytest.approx(reference.metrics["accuracy"])


@pytest.mark.parametrize("model", [softmax_regression, mlp], ids=["softmax", "mlp"])
def test_a_users_classifier_on_digits_trains_the_same_everywhere(model: Any) -> None:
    runs = {}
    for be in cpu_backends():
        loss, init, _ = model(be)
        X, Y = vecx.load_digits(be)
        runs[be.spec] = vecx.fit(be, X, Y, loss=loss, params=init, lr=0.5, batch_size=64,
                                 epochs=3, log_every=600)  # fmt: skip
    reference = runs.pop("numpy:cpu")
    assert reference.loss < 0.25 * np.log(10)  # from log(10) at chance
    assert type(reference.params) is type(init_structure(model))
    for spec, h in runs.items():
        assert h.examples == reference.examples
        np.testing.assert_allclose(h.losses, reference.losses, rtol=1e-4, err_msg=spec)
        for got, want in zip(final_params(h), final_params(reference), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-5, err_msg=spec)


def init_structure(model: Any) -> Any:
    _, init, _ = model(vecx.backend("numpy"))
    return init(np.random.default_rng(0))


def test_history_params_keep_the_structure_of_params_through_json() -> None:
    be = vecx.backend("numpy")
    loss, init, _ = mlp(be)
    X, Y = vecx.load_digits(be, 256)
    h = vecx.fit(be, X, Y, loss=loss, params=init, lr=0.2, batch_size=64, epochs=1)
    assert isinstance(h.params, MLPParams) and set(h.params.hidden) == {"W", "b"}
    assert h.params.hidden["W"].dtype == np.float32  # the backend's dtype
    doc = json.loads(json.dumps(h.to_dict(), allow_nan=False))
    back = History.from_dict(doc)
    assert type(back.params).__name__ == "MLPParams" and back.params._fields == ("hidden", "out")
    np.testing.assert_array_equal(back.params.out["W"], h.params.out["W"])
    assert back.to_dict() == doc
    tupled = vecx.fit(be, X, Y, loss=softmax_regression(be)[0], lr=0.2, batch_size=64,
                      epochs=1, params=softmax_regression(be)[1])  # fmt: skip
    assert isinstance(tupled.params, tuple) and len(tupled.params) == 2
    assert isinstance(History.from_dict(tupled.to_dict()).params, tuple)


def test_a_custom_loss_needs_params_and_float_parameters() -> None:
    be = vecx.backend("numpy")
    X, y = two_blobs(be)
    loss, _, _ = logistic(be)
    with pytest.raises(ValueError, match="needs params"):
        vecx.fit(be, X, y, loss=loss, lr=0.1, batch_size=10, epochs=1)
    with pytest.raises(ValueError, match="floating-point"):
        vecx.fit(be, X, y, loss=loss, params={"w": np.zeros((2, 1), int)}, lr=0.1,
                 batch_size=10, epochs=1)  # fmt: skip
    with pytest.raises(ValueError, match="no arrays"):
        vecx.fit(be, X, y, loss=loss, params={}, lr=0.1, batch_size=10, epochs=1)
    with pytest.raises(ValueError, match="unknown optimizer"):
        vecx.fit(be, X, y, loss=loss, params=logistic(be)[1], lr=0.1, batch_size=10,
                 epochs=1, optimizer="adam")  # fmt: skip
    with pytest.raises(ValueError, match="unknown task"):
        vecx.fit(be, X, y, task="resnet", lr=0.1, batch_size=10, epochs=1)


# --- built-in digits tasks ------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_runs() -> dict[str, dict[str, History]]:
    out: dict[str, dict[str, History]] = {}
    for preset in ("digits-softmax", "digits-mlp"):
        for be in cpu_backends():
            out.setdefault(preset, {})[be.spec] = vecx.train(be, preset)
            if be.name in ("torch", "jax"):
                out[preset][be.spec + " native"] = vecx.train(be, preset, executor="native")
    return out


@pytest.mark.parametrize("preset", ["digits-softmax", "digits-mlp"])
def test_digits_presets_reach_95_percent_and_agree(digits_runs: Any, preset: str) -> None:
    runs = dict(digits_runs[preset])
    reference = runs.pop("numpy:cpu")
    assert reference.accuracy >= 0.95, reference.accuracy
    assert len(reference.metrics["accuracy"]) == len(reference.losses)
    for name, h in runs.items():
        assert h.loss == pytest.approx(reference.loss, rel=1e-4), name
        assert h.accuracy >= 0.95, name
        for got, want in zip(final_params(h), final_params(reference), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4, err_msg=name)


def test_digits_data_is_the_shipped_file() -> None:
    be = vecx.backend("numpy")
    X, Y = vecx.load_digits(be)
    assert X.shape == (1797, 64) and Y.shape == (1797, 10) and X.dtype == np.float32
    assert X.min() == 0.0 and X.max() == 1.0
    np.testing.assert_array_equal(Y.sum(axis=1), 1.0)
    assert 174 <= Y.sum(axis=0).min() and Y.sum(axis=0).max() <= 183  # per the README


def test_a_damaged_digits_file_is_an_error(tmp_path: Any) -> None:
    from vecx.data import digits_path

    bad = tmp_path / "digits.csv.gz"
    bad.write_bytes(digits_path().read_bytes()[:-10])
    with pytest.raises(ValueError, match="damaged or truncated"):
        vecx.load_digits(vecx.backend("numpy"), path=bad)


# --- optimizers -----------------------------------------------------------------------------


def test_momentum_is_d2ls_update_and_torch_optims() -> None:
    be = vecx.backend("numpy")
    opt = vecx.momentum(0.5)
    params = {"w": np.array([1.0, 2.0])}
    state = opt.init(be, params)
    grads = {"w": np.array([1.0, -1.0])}
    params, state = opt.update(params, grads, state, 0.1)
    np.testing.assert_allclose(state["w"], [1.0, -1.0])  # v = 0.5 * 0 + g
    np.testing.assert_allclose(params["w"], [0.9, 2.1])
    params, state = opt.update(params, grads, state, 0.1)
    np.testing.assert_allclose(state["w"], [1.5, -1.5])
    np.testing.assert_allclose(params["w"], [0.75, 2.25])
    with pytest.raises(ValueError, match="beta"):
        vecx.momentum(1.0)


def test_momentum_trains_the_same_everywhere_and_as_torch_optim() -> None:
    runs = {}
    for be in cpu_backends():
        runs[be.spec] = vecx.train(be, "airfoil-mb100", optimizer="momentum", lr=0.1)
        if be.name in ("torch", "jax"):
            runs[be.spec + " native"] = vecx.train(be, "airfoil-mb100", optimizer="momentum",
                                                   lr=0.1, executor="native")  # fmt: skip
    reference = runs.pop("numpy:cpu")
    assert reference.optimizer == "momentum(beta=0.9)"
    assert reference.loss < 0.26
    plain = vecx.train(vecx.backend("numpy"), "airfoil-mb100", lr=0.1)
    assert plain.loss != reference.loss
    for name, h in runs.items():
        np.testing.assert_allclose(h.params["w"], reference.params["w"], rtol=1e-3, atol=1e-5,
                                   err_msg=name)  # fmt: skip


# --- the segment seam -----------------------------------------------------------------------


class CountingExecutor(StepExecutor):
    """The default executor, recording each segment it is handed."""

    name = "counting"

    def __init__(self) -> None:
        self.blocks: list[Any] = []

    def build(self, problem: Problem) -> Any:
        program = super().build(problem)
        inner = program.segment

        def segment(state: Any, block: Any) -> Any:
            self.blocks.append(block)
            return inner(state, block)

        program.segment = segment  # type: ignore[method-assign]
        return program


def test_one_segment_call_per_checkpoint_with_the_data_iter_batches() -> None:
    be = vecx.backend("numpy")
    X, Y = vecx.load_digits(be, 500)
    counting = CountingExecutor()
    h = vecx.fit(be, X, Y, task="softmax", lr=0.1, batch_size=64, epochs=3, log_every=300,
                 executor=counting)  # fmt: skip
    assert len(counting.blocks) == len(h.examples)
    for block in counting.blocks:  # runs of equal batch sizes, as 2-D int64 arrays
        assert all(run.ndim == 2 and run.dtype == np.int64 for run in block)
    batches = [row for block in counting.blocks for run in block for row in run]
    batches_of = vecx.data_iter(be, 64, X, Y, seed=0)  # one seeded iterator, three epochs
    expected = [idx for _ in range(3) for idx in batches_of.indices()]
    assert len(batches) == len(expected)
    assert all(np.array_equal(a, b) for a, b in zip(batches, expected, strict=True))
    assert h.executor == "counting"
    plain = vecx.fit(be, X, Y, task="softmax", lr=0.1, batch_size=64, epochs=3, log_every=300)
    assert plain.losses == h.losses  # the executor changes how steps run, not what they do


def test_a_loss_that_draws_random_numbers_trains_everywhere() -> None:
    """Dropout: be.normal inside the loss. On JAX the compiled step then passes the key
    through (found at warm-up), so every step draws a fresh mask."""
    for be in cpu_backends():
        def loss(params: Any, X: Any, Y: Any, be: Any = be) -> Any:
            H = be.maximum(X @ params["W1"], 0.0)
            keep = be.astype(be.normal(0.0, 1.0, tuple(H.shape)) > -0.5, be.dtype)
            Z = (H * keep) @ params["W2"]
            return be.mean(be.logsumexp(Z, axis=1) - be.sum(Y * Z, axis=1))

        def init(rng: np.random.Generator) -> dict[str, np.ndarray]:
            return {"W1": rng.standard_normal((64, 32)) / 8,
                    "W2": rng.standard_normal((32, 10)) / 6}  # fmt: skip

        X, Y = vecx.load_digits(be, 512)
        h = vecx.fit(be, X, Y, loss=loss, params=init, lr=0.5, batch_size=32, epochs=4)
        assert h.loss < 0.6 * h.losses[0], be.spec


# --- found by review: bad input is one clear error before any step ---------------------


def test_a_classifier_needs_one_hot_labels() -> None:
    """1-D labels broadcast (n, 1) logits against (n,) labels: a 'cross-entropy' of -708
    and 100% accuracy, with no error."""
    be = vecx.backend("numpy")
    X, Y = vecx.load_digits(be, 100)
    labels = Y.argmax(axis=1).astype(np.float32)
    for task in ("softmax", "mlp"):
        with pytest.raises(ValueError, match="one-hot"):
            vecx.fit(be, X, labels, task=task, lr=0.1, batch_size=10, epochs=1)


@pytest.mark.parametrize(
    "change, word",
    [
        ({"metrics": [lambda p, X, y: 0.0]}, "metrics must be a dict"),
        ({"metrics": {"acc": 5}}, "metrics"),
        ({"loss": "mse"}, "loss must be a function"),
        ({"callback": 5}, "callback"),
        ({"replacement": "yes"}, "replacement"),
        ({"params": {"w": [[0.0], [0.0]], "b": np.zeros(1)}}, "list of numbers"),
    ],
)
def test_fit_names_the_bad_argument(change: dict, word: str) -> None:
    be = vecx.backend("numpy")
    X, y = two_blobs(be)
    loss, params, _ = logistic(be)
    kwargs = {"loss": loss, "params": params, "lr": 0.1, "batch_size": 10, "epochs": 1,
              **change}  # fmt: skip
    with pytest.raises(ValueError, match=word):
        vecx.fit(be, X, y, **kwargs)


def test_fit_wants_arrays_of_the_backend_in_its_dtype() -> None:
    be = vecx.backend("numpy")
    X, y = two_blobs(be)
    loss, params, _ = logistic(be)
    kwargs = {"loss": loss, "params": params, "lr": 0.1, "batch_size": 10, "epochs": 1}
    with pytest.raises(ValueError, match="float64 but numpy:cpu computes in float32"):
        vecx.fit(be, X.astype(np.float64), y, **kwargs)
    with pytest.raises(ValueError, match="X must be floating-point"):
        vecx.fit(be, X.astype(np.int64), y, **kwargs)
    for be in cpu_backends():
        if be.name != "numpy":  # host arrays on a torch or jax backend
            with pytest.raises(ValueError, match="be.asarray"):
                vecx.fit(be, np.asarray(X), np.asarray(y), **kwargs)


def test_metrics_must_be_scalars_and_task_params_shaped_as_the_tasks() -> None:
    be = vecx.backend("numpy")
    X, Y = vecx.load_digits(be, 100)
    with pytest.raises(ValueError, match="metric 'rows' must be a scalar"):
        vecx.fit(be, X, Y, task="softmax", lr=0.1, batch_size=10, epochs=1,
                 metrics={"rows": lambda p, X, Y: X @ p["W"]})  # fmt: skip
    with pytest.raises(ValueError, match="params for task 'mlp' must be shaped as its own"):
        vecx.fit(be, X, Y, task="mlp", lr=0.1, batch_size=10, epochs=1,
                 params={"W": np.zeros((64, 10)), "b": np.zeros(10)})  # fmt: skip


def test_numpy_scalar_parameters_train_everywhere() -> None:
    out = []
    for be in cpu_backends():
        X, y = vecx.synthetic_data(be, [2.0], 1.0, 100)
        h = vecx.fit(be, X, y, loss=lambda p, X, y: ((X * p["w"] + p["b"] - y) ** 2).mean(),
                     params={"w": np.float32(0.0), "b": np.float32(0.0)}, lr=0.1,
                     batch_size=10, epochs=3)  # fmt: skip
        out.append(float(h.params["b"]))
    assert max(out) - min(out) < 1e-5 and abs(out[0] - 1.0) < 0.1


def test_accuracy_counts_ties_as_a_chance_and_reads_soft_labels() -> None:
    be = vecx.backend("numpy")
    from vecx.training import accuracy

    logits = np.array([[0.1, 0.9, 0.0], [2.0, 2.0, 2.0]], np.float32)
    smoothed = np.array([[0.05, 0.9, 0.05], [0.9, 0.05, 0.05]], np.float32)
    assert float(accuracy(be, logits[:1], smoothed[:1])) == 1.0  # soft labels: their max
    assert float(accuracy(be, logits[1:], smoothed[1:])) == pytest.approx(1 / 3)


def test_an_interrupted_history_ends_where_it_stopped() -> None:
    """Ctrl-C inside a segment (here: in the 51st step's loss): the parameters are those of
    the 50 steps taken, not of the last checkpoint (the initial ones, here)."""
    for be in cpu_backends():
        if be.capabilities.compiles:
            continue  # a compiled loss runs once, when traced: no Ctrl-C to stage in it
        X, y = vecx.synthetic_data(be, [2.0, -3.4], 4.2, 1000)
        calls = [0]

        def loss(p: Any, X: Any, y: Any, calls: list[int] = calls) -> Any:
            calls[0] += 1
            if calls[0] == 51:
                raise KeyboardInterrupt
            return ((X @ p["w"] + p["b"] - y) ** 2 / 2).mean()

        params = {"w": np.zeros((2, 1), np.float32), "b": np.zeros(1, np.float32)}
        with pytest.raises(KeyboardInterrupt) as info:
            vecx.fit(be, X, y, loss=loss, params=params, lr=0.03, batch_size=10, epochs=1,
                     log_every=1000)  # fmt: skip
        history = info.value.history  # type: ignore[attr-defined]
        assert history.examples == [] and history.interrupted
        assert float(np.abs(history.params["b"]).max()) > 0.1, be.spec  # 50 steps trained


# --- found by a newcomer's walk-through -------------------------------------------------


def test_a_loss_returning_a_tuple_is_one_clear_error_in_fit() -> None:
    for be in cpu_backends():
        X, y = two_blobs(be)
        loss, params, _ = logistic(be)
        with pytest.raises(TypeError, match="one scalar.*metrics="):
            vecx.fit(be, X, y, loss=lambda p, X, y, loss=loss: (loss(p, X, y), {"n": 1}),
                     params=params, lr=0.1, batch_size=10, epochs=1)  # fmt: skip
        with pytest.raises(TypeError, match="metric 'none' must return one scalar"):
            vecx.fit(be, X, y, loss=loss, params=params, lr=0.1, batch_size=10, epochs=1,
                     metrics={"none": lambda p, X, y: None})  # fmt: skip


def test_fit_takes_a_backend_and_either_a_task_or_a_loss() -> None:
    be = vecx.backend("numpy")
    X, Y = vecx.load_digits(be, 100)
    with pytest.raises(TypeError, match=r"vecx.backend\('numpy'\)"):
        vecx.fit("numpy", X, Y, task="softmax", lr=0.1, batch_size=10, epochs=1)
    with pytest.raises(TypeError, match="not the string"):
        vecx.load_digits("numpy")
    with pytest.raises(ValueError, match="task= or loss=, not both"):
        vecx.fit(be, X, Y, task="mlp", loss=lambda p, X, y: 0.0, params={"W": np.zeros(3)},
                 lr=0.1, batch_size=10, epochs=1)  # fmt: skip


def test_a_checkpoint_hands_out_its_parameters() -> None:
    be = vecx.backend("numpy")
    X, Y = vecx.load_digits(be, 200)
    saved = []
    h = vecx.fit(be, X, Y, task="softmax", lr=0.5, batch_size=20, epochs=2, log_every=200,
                 callback=lambda cp: saved.append((cp.examples, cp.params())))  # fmt: skip
    assert [e for e, _ in saved] == h.examples == [200, 400]
    first, last = saved[0][1], saved[-1][1]
    assert set(first) == {"W", "b"} and not np.array_equal(first["W"], last["W"])
    np.testing.assert_array_equal(last["W"], h.params["W"])


def test_history_equality_nan_metrics_and_bad_dicts() -> None:
    be = vecx.backend("numpy")
    X, y = two_blobs(be)
    loss, params, _ = logistic(be)
    h = vecx.fit(be, X, y, loss=loss, params=params, lr=0.1, batch_size=10, epochs=1,
                 metrics={"broken": lambda p, X, y: be.log(be.zeros(()) - 1.0)})  # fmt: skip
    assert h == h and h != History.from_dict(h.to_dict())  # identity, never a crash
    doc = h.to_dict()
    assert doc["metrics"]["broken"] == [None]  # nan: null, so the JSON stays strict
    json.dumps(doc, allow_nan=False)
    with pytest.raises(ValueError, match="not a training history"):
        History.from_dict({"loss": 1.0})
