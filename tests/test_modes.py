"""Compiled mode: every mode of every backend trains what eager trains; the replay
compiler gives the eager autodiff's gradients; no compilation inside the timed region."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import vecx
from vecx.backends._replay import Replayed
from vecx.training import Problem, StepExecutor
from vecx.training.loop import init_params
from vecx.training.optimizers import sgd

CPU = ("numpy", "torch", "jax")


def cpu_backends() -> list[Any]:
    return [vecx.backend(s.spec) for s in vecx.list_backends()
            if s.available and s.name in CPU and s.device == "cpu"]  # fmt: skip


def task_data(be: Any, task: str) -> tuple[Any, Any, dict[str, Any]]:
    """Small data of each built-in task; 150 digits rows make a smaller last batch."""
    if task == "linreg":
        X, y = vecx.synthetic_data(be, [2.0, -3.4], 4.2, 230)
        return X, y, {"lr": 0.03, "batch_size": 10}
    X, Y = vecx.load_digits(be, 150)
    return X, Y, {"lr": 0.3, "batch_size": 32}


def run_modes(be: Any, task: str) -> dict[str, Any]:
    X, y, hyper = task_data(be, task)
    out = {}
    for mode in vecx.MODES:
        try:
            out[mode] = vecx.fit(be, X, y, task=task, epochs=2, log_every=100, mode=mode,
                                 **hyper)  # fmt: skip
        except vecx.ModeUnsupported as exc:
            out[mode] = exc
    return out


#: Where ``fused`` is not built: NumPy (nothing to fuse with), torch on the CPU (CUDA
#: graphs need CUDA), CuPy (its graph capture is not used yet).
NO_FUSED = {"numpy:cpu", "torch:cpu", "cupy:cuda:0"}


def cuda_backends() -> list[Any]:
    return [vecx.backend(s.spec) for s in vecx.list_backends()
            if s.available and s.device.startswith("cuda")]  # fmt: skip


@pytest.mark.parametrize("task", ["linreg", "softmax", "mlp"])
@pytest.mark.parametrize("where", ["cpu", "cuda"])
def test_every_mode_trains_what_eager_trains(task: str, where: str) -> None:
    """Same data, initial parameters and minibatches: final parameters equal eager's to
    float32 rounding; a mode a backend cannot run is an error that says why, never
    another mode run in its place."""
    backends = cpu_backends() if where == "cpu" else cuda_backends()
    if not backends:
        pytest.skip(f"no {where} backend here")
    for be in backends:
        runs = run_modes(be, task)
        eager = runs["eager"]
        assert eager.mode == "eager" and eager.compiles is None, be.spec
        assert isinstance(runs["fused"], vecx.ModeUnsupported) == (be.spec in NO_FUSED)
        for mode, h in runs.items():
            if isinstance(h, vecx.ModeUnsupported):
                assert mode == "fused", (be.spec, h)
                assert "fused" in str(h) and ("CUDA" in str(h) or "nothing to fuse" in str(h))
                continue
            assert h.mode == mode, (be.spec, mode)
            assert h.complete and len(h.losses) == len(eager.losses)
            for name, value in h.params.items():
                np.testing.assert_allclose(value, eager.params[name], rtol=2e-4, atol=2e-6,
                                           err_msg=f"{be.spec} {mode} {task} {name}")  # fmt: skip
            if mode != "eager":
                assert h.compiles >= 1 and h.compile_s is not None, (be.spec, mode)


def test_the_default_mode_is_jit_where_jit_compiles() -> None:
    for be in cpu_backends():
        X, y = vecx.synthetic_data(be, [1.0], 0.0, 40)
        h = vecx.fit(be, X, y, lr=0.1, batch_size=10, epochs=1)
        assert h.mode == ("jit" if be.capabilities.compiles else "eager"), be.spec
        assert h.to_dict()["mode"] == h.mode


def test_fused_runs_one_call_per_run_of_equal_batches_and_compiles_each_shape_once() -> None:
    pytest.importorskip("jax")
    be = vecx.backend("jax")
    X, y = vecx.synthetic_data(be, [1.0, 2.0], 0.5, 103)  # batches of 10 and a last of 3
    h = vecx.fit(be, X, y, lr=0.05, batch_size=10, epochs=3, log_every=50, mode="fused")
    shapes = vecx.training.schedule.run_shapes(103, 10, 3, 50)
    assert h.compiles == len(shapes) > 1  # one compilation per (steps, batch), in warm-up
    again = vecx.fit(be, X, y, lr=0.01, batch_size=10, epochs=3, log_every=50, mode="fused")
    assert again.compile_s == 0.0 and again.compiles == h.compiles  # reused, lr a tensor


def test_draws_inside_the_loss_agree_in_every_jax_mode() -> None:
    """The key goes through the compiled step and through the scan: eager, jit and fused
    draw the same masks in the same order."""
    pytest.importorskip("jax")
    be = vecx.backend("jax")

    def loss(params: Any, X: Any, y: Any) -> Any:
        keep = be.astype(be.normal(0.0, 1.0, tuple(X.shape)) > -0.5, be.dtype)
        return be.mean(((X * keep) @ params["w"] - y) ** 2)

    X, y = vecx.synthetic_data(be, [1.0, -1.0], 0.0, 60)
    params = {"w": np.zeros((2, 1), np.float32)}
    results = {}
    for mode in vecx.MODES:
        be.seed(3)
        results[mode] = vecx.fit(be, X, y, loss=loss, params=params, lr=0.1, batch_size=10,
                                 epochs=2, mode=mode).params["w"]  # fmt: skip
    np.testing.assert_allclose(results["jit"], results["eager"], rtol=1e-5)
    np.testing.assert_allclose(results["fused"], results["eager"], rtol=1e-5)


@pytest.mark.parametrize("name", ["numpy", "torch"])
def test_jit_refuses_a_loss_that_draws_in_one_line(name: str) -> None:
    """NumPy's replay compiler would replay the first draws; torch.compile cannot trace
    vecx's seeded generator (dynamo's report ran to 73 lines): both say so in one."""
    pytest.importorskip(name)
    be = vecx.backend(name)

    def loss(params: Any, X: Any, y: Any) -> Any:
        noise = be.normal(0.0, 0.1, tuple(X.shape))
        return be.mean(((X + noise) @ params["w"] - y) ** 2)

    X, y = vecx.synthetic_data(be, [1.0], 0.0, 20)
    with pytest.raises(vecx.ModeUnsupported, match="random numbers") as info:
        vecx.fit(be, X, y, loss=loss, params={"w": np.zeros((1, 1), np.float32)}, lr=0.1,
                 batch_size=10, epochs=1, mode="jit")  # fmt: skip
    assert "\n" not in str(info.value) and "use mode 'eager'" in str(info.value)


# --- the recompile guard --------------------------------------------------------------------


@pytest.mark.parametrize("name", CPU)
def test_a_new_shape_inside_the_timed_region_is_an_error(name: str) -> None:
    """The warm-up compiles every batch size the run uses, then the step is sealed: a
    batch of another size inside a segment (what a shape-changing bug would do) raises
    Recompiled instead of timing a compilation as training."""
    if name not in {be.name for be in cpu_backends()}:
        pytest.skip(f"{name} is not installed")
    be = vecx.backend(name)
    X, y = vecx.synthetic_data(be, [1.0, 2.0], 0.5, 40)
    loss = lambda p, X, y: ((X @ p["w"] - y) ** 2).mean()  # noqa: E731
    params = init_params(be, {"w": np.zeros((2, 1), np.float32)}, 0)
    problem = Problem(be, X, y, loss, {}, params, sgd, 0.1, 10)
    program = StepExecutor("jit").build(problem)
    program.warmup(program.state)
    state = program.segment(program.state, (np.arange(20).reshape(2, 10),))  # warmed: fine
    with pytest.raises(vecx.Recompiled, match="timed region"):
        program.segment(state, (np.arange(14).reshape(2, 7),))


# --- the replay compiler ---------------------------------------------------------------------


def replayed(be: Any, f: Any, argnums: Any = 0) -> tuple[Any, Replayed]:
    vg = be.value_and_grad(f, argnums=argnums)
    return vg, Replayed(lambda *a: vg(*a))


LOSSES = {
    "linreg": lambda be, w, X: ((X @ w - 1.0) ** 2 / 2).mean(),
    "leaky relu mask": lambda be, w, X: be.sum(be.where(X @ w > 0, X @ w, 0.1 * (X @ w))),
    "masked cast": lambda be, w, X: be.sum(be.astype(X @ w > 0, "float32") * (X @ w) ** 2),
    "softmax": lambda be, w, X: be.mean(be.logsumexp(X @ w, axis=1) - (X @ w)[:, 0]),
    "shared input": lambda be, w, X: be.sum(w * w) + be.sum(be.tanh(X @ w) * be.sigmoid(X @ w)),
    "reductions": lambda be, w, X: be.max(X @ w) - be.min(X @ w, axis=0).mean()
    + be.sqrt(be.abs(X @ w) + 1).sum() + be.clip(X @ w, -0.5, 0.5).sum(),
    "reshape and T": lambda be, w, X: ((X @ w).reshape(-1) @ (X @ w).T.reshape(-1)) / 7,
}


@pytest.mark.parametrize("case", sorted(LOSSES))
def test_replayed_gradients_are_the_eager_gradients_on_new_inputs(case: str) -> None:
    """Traced once, replayed on new data: the masks, casts and shared inputs are
    computed again, never the first call's (a replay that baked them in would give the
    first batch's gradient)."""
    be = vecx.backend("numpy")
    fn = LOSSES[case]
    vg, step = replayed(be, lambda w, X: fn(be, w, X))
    rng = np.random.default_rng(1)
    w = rng.standard_normal((3, 2)).astype(np.float32)
    for _ in range(4):
        X = rng.standard_normal((7, 3)).astype(np.float32)
        (value, grad), (rvalue, rgrad) = vg(w, X), step(w, X)
        np.testing.assert_allclose(rvalue, value, rtol=1e-6)
        np.testing.assert_allclose(rgrad, grad, rtol=1e-6, atol=1e-7)
        assert rgrad.dtype == grad.dtype == np.float32
    assert step.compiles() == 1
    grad = be.grad(lambda w, X: fn(be, w, X))  # the value not wanted: dropped from the replay
    only = Replayed(lambda *a: grad(*a))
    for _ in range(3):
        X = rng.standard_normal((7, 3)).astype(np.float32)
        np.testing.assert_allclose(only(w, X), vg(w, X)[1], rtol=1e-6, atol=1e-7)


def test_a_gradient_from_constants_alone_is_a_new_array_at_every_call() -> None:
    """The mean's spread of the seed 1 is folded into a constant when traced; what is
    handed out is a copy, so writing into one gradient cannot change the next."""
    be = vecx.backend("numpy")
    grad = be.grad(lambda w: be.mean(w) * 3)
    step = Replayed(lambda w: grad(w))
    w = np.ones(4, np.float32)
    first = step(w)
    first[:] = 7.0
    second = step(w)
    np.testing.assert_allclose(second, np.full(4, 0.75, np.float32))
    assert step.compiles() == 1


def test_the_replay_compiler_traces_again_per_shape_and_refuses_once_sealed() -> None:
    be = vecx.backend("numpy")
    vg, step = replayed(be, lambda p, X: be.sum((X @ p[0] + p[1]) ** 2), argnums=0)
    p = (np.ones((2, 1), np.float32), np.zeros(1, np.float32))
    step(p, np.ones((4, 2), np.float32))
    step(p, np.ones((4, 2), np.float32) * 2)
    assert step.compiles() == 1
    _, (gw, gb) = step(p, np.ones((3, 2), np.float32))
    assert step.compiles() == 2 and gw.shape == (2, 1) and gb.shape == (1,)
    step.seal()
    with pytest.raises(vecx.Recompiled, match="float32\\[5, 2\\]"):
        step(p, np.ones((5, 2), np.float32))
    step.seal(False)
    step(p, np.ones((5, 2), np.float32))


def test_replayed_gradients_are_arrays_of_their_own() -> None:
    """x + x, and a gradient passed on unchanged to two arguments, are not one array
    handed out twice (writing into one would change the other)."""
    be = vecx.backend("numpy")
    vg, step = replayed(be, lambda a, b: be.sum(a + b), argnums=(0, 1))
    a = np.ones(3, np.float32)
    ga, gb = step(a, a)[1]
    assert ga is not gb and not np.shares_memory(ga, gb)
    ga[0] = 5.0
    assert gb[0] == 1.0


# --- found by review: replays that differed from the eager autodiff --------------------------


def f32(*values: float) -> np.ndarray:
    return np.array(values, np.float32)


X43 = np.arange(12, dtype=np.float32).reshape(4, 3) / 10

REVIEWED = {
    # a gradient folded from constants alone, which must still be un-broadcast
    "broadcast constant": (lambda be: be.value_and_grad(
        lambda x: (x.sum() + f32(0, 1, 2)).sum()), [(f32(1, 1, 1),), (f32(2, 0, 1),)]),
    # d2l's shape slip: a prediction of shape (n,) minus y of shape (n, 1)
    "(n,) - (n, 1)": (lambda be: be.grad(lambda w, X, y: ((X @ w - y) ** 2).mean()),
                      [(f32(1, 1, 1), X43, np.ones((4, 1), np.float32)),
                       (f32(0, 2, 1), X43 * 2, np.zeros((4, 1), np.float32))]),
    "stable log-softmax": (lambda be: be.value_and_grad(lambda w, X: be.mean(be.log(be.sum(
        be.exp(X * w - be.max(X * w, axis=1, keepdims=True)), axis=1)))),
        [(f32(1, 1, 1), X43), (f32(3, -1, 2), X43 - 0.5)]),
    "argnums out of order": (lambda be: be.grad(lambda a, b: (a * 2).sum() + (b ** 2).sum(),
                                                argnums=(1, 0)),
                             [(f32(1, 1, 1), np.ones((2, 2), np.float32))]),
    "two 0-d masks": (lambda be: be.grad(lambda w, t: be.where(w > 0, 3.0 * w, -w)
                                         + be.where(t > 0, t, 0.0 * t)),
                      [(np.float32(1), np.float32(1)), (np.float32(-1), np.float32(1))]),
}


@pytest.mark.parametrize("case", sorted(REVIEWED))
def test_reviewed_cases_replay_as_eager(case: str) -> None:
    be = vecx.backend("numpy")
    make, calls = REVIEWED[case]
    fn = make(be)
    step = Replayed(lambda *a: fn(*a))
    for args in calls:
        got, want = step(*args), fn(*args)
        for g, w in zip(np.atleast_1d(np.asarray(got, dtype=object)),
                        np.atleast_1d(np.asarray(want, dtype=object)), strict=True):  # fmt: skip
            np.testing.assert_allclose(np.asarray(g, float), np.asarray(w, float), rtol=1e-6)


def test_one_array_passed_for_two_arguments_is_two_inputs() -> None:
    """Traced with the same array twice, the replay still takes the two arguments apart."""
    be = vecx.backend("numpy")
    grad = be.grad(lambda a, b: (a * b * b).sum(), argnums=(0, 1))
    step = Replayed(lambda *a: grad(*a))
    w = f32(1, 1)
    step(w, w)
    for got, want in zip(step(f32(1, 1), f32(3, 3)), grad(f32(1, 1), f32(3, 3)), strict=True):
        np.testing.assert_allclose(got, want)


def test_a_boolean_mask_selection_is_refused_by_the_replay_compiler() -> None:
    be = vecx.backend("numpy")
    vg = be.value_and_grad(lambda w, X, y: ((be.index(X, y > 0) @ w) ** 2).mean())
    with pytest.raises(TypeError, match="boolean-mask selection"):
        Replayed(lambda *a: vg(*a))(f32(1, 1, 1), X43, f32(1, -1, -1, -1))


def test_a_0d_parameter_trains_in_jit_mode_as_in_eager() -> None:
    """An SGD step turns a 0-d array into a NumPy scalar: the same signature, not a new
    trace inside the timed region."""
    be = vecx.backend("numpy")
    rng = np.random.default_rng(0)
    X = be.asarray(rng.normal(size=(20, 3)).astype(np.float32))
    y = be.asarray(rng.normal(size=20).astype(np.float32))
    runs = {mode: vecx.fit(be, X, y, loss=lambda p, X, y: ((X @ p["w"] + p["b"] - y) ** 2).mean(),
                           params={"w": np.zeros(3, np.float32), "b": np.float32(0.0)},
                           lr=0.1, batch_size=5, epochs=1, mode=mode).params
            for mode in ("eager", "jit")}  # fmt: skip
    for name in ("w", "b"):
        np.testing.assert_allclose(runs["jit"][name], runs["eager"][name], rtol=1e-6)


def test_a_constant_aux_output_is_a_new_array_at_every_call() -> None:
    be = vecx.backend("numpy")
    vg = be.value_and_grad(lambda w: ((w * 2).sum(), np.zeros(2, np.float32)), has_aux=True)
    step = Replayed(lambda *a: vg(*a))
    (_, aux), _ = step(f32(1, 1))
    aux[:] = 5.0
    (_, again), _ = step(f32(1, 1))
    np.testing.assert_array_equal(again, np.zeros(2, np.float32))
