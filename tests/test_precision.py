"""Mixed precision: the cast points, the loss-scaling rule, and losses within the
dtype's roundoff of float32's, on every backend."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import vecx

CPU = ("numpy", "torch", "jax")
#: Unit roundoff of each compute dtype (half the gap between 1 and the next number).
ROUNDOFF = {"float32": 2.0**-24, "bfloat16": 2.0**-8, "float16": 2.0**-11}
#: Final losses of mixed precision within TOLERANCE_U x roundoff (relative) of float32's:
#: the step rounds at four stages (the casts of the inputs, the matmul's output, the
#: elementwise loss, the reduction), each by up to u relative, and cross-entropy is the
#: difference of two terms about twice the loss (log-sum-exp and <y, z>), which doubles
#: them twice: 4 x 2 x 2 = 16 u.
TOLERANCE_U = 16
#: torch's and JAX's final losses of one policy within AGREE_U units of its roundoff of each
#: other: their float32 runs differ by 2.07 units of float32's here on linreg (0 on the
#: digits tasks), and the same steps in a lower dtype may differ by about as many of its
#: units (measured: at most 0.44, bfloat16 mlp).
AGREE_U = 2


def cpu_backends() -> list[Any]:
    return [vecx.backend(s.spec) for s in vecx.list_backends()
            if s.available and s.name in CPU and s.device == "cpu"]  # fmt: skip


def policies(be: Any) -> list[str]:
    return [d for d in ("bfloat16", "float16") if d in be.capabilities.dtypes]


def test_the_step_computes_in_the_low_dtype_and_keeps_float32_parameters() -> None:
    """The loss sees its parameters and batch in the compute dtype; the gradients, the
    update, the parameters and the evaluation stay float32."""
    for be in cpu_backends():
        for dtype in policies(be):
            seen: set[tuple[str, ...]] = set()

            def loss(p: Any, X: Any, y: Any, be: Any = be, seen: set = seen) -> Any:
                seen.add(tuple(str(a.dtype).removeprefix("torch.") for a in (p["w"], X, y)))
                return be.mean((X @ p["w"] - y) ** 2)

            X, y = vecx.synthetic_data(be, [1.0, -1.0], 0.0, 40)
            h = vecx.fit(be, X, y, loss=loss, params={"w": np.zeros((2, 1), np.float32)},
                         lr=0.1, batch_size=10, epochs=1, compute_dtype=dtype)  # fmt: skip
            assert (dtype, dtype, dtype) in seen, (be.spec, seen)  # the step's casts
            assert ("float32",) * 3 in seen  # the checkpoint evaluation: no cast
            assert h.params["w"].dtype == np.float32 and h.compute_dtype == dtype
            assert h.to_dict()["compute_dtype"] == dtype


def test_numpy_has_no_bfloat16_and_says_so() -> None:
    be = vecx.backend("numpy")
    X, y = vecx.synthetic_data(be, [1.0], 0.0, 20)
    with pytest.raises(vecx.UnsupportedDtype, match="NumPy has no bfloat16"):
        vecx.fit(be, X, y, lr=0.1, batch_size=10, epochs=1, compute_dtype="bfloat16")
    with pytest.raises(ValueError, match="compute_dtype must be one of"):
        vecx.fit(be, X, y, lr=0.1, batch_size=10, epochs=1, compute_dtype="int8")


# --- the loss-scaling rule ------------------------------------------------------------------


def test_an_overflowing_scale_skips_every_step_and_backs_off_each_time() -> None:
    """A scale so large that every float16 gradient overflows: each step is skipped (the
    parameters stay where they started) and halves the scale, on every backend."""
    for be in cpu_backends():
        X, y = vecx.synthetic_data(be, [1.0, -1.0], 0.5, 40)
        start = 2.0**70
        with pytest.raises(vecx.TrainingDiverged, match="all 8 steps had a non-finite "
                           "float16 gradient") as caught:  # a run that never stepped
            vecx.fit(be, X, y, lr=0.1, batch_size=10, epochs=2, compute_dtype="float16",
                     loss_scale=vecx.LossScale(init=start))  # fmt: skip
        h = caught.value.history
        assert h.skipped_steps == 8 and not h.complete, be.spec
        assert h.loss_scale == start * 0.5**8
        init = vecx.TASKS["linreg"].init(vecx.data.host_rng(0, "init"), 2, 1)
        np.testing.assert_array_equal(h.params["w"], init["w"])
        np.testing.assert_array_equal(h.params["b"], init["b"])


def test_the_scale_grows_after_each_interval_of_finite_steps() -> None:
    for be in cpu_backends():
        X, y = vecx.synthetic_data(be, [1.0, -1.0], 0.5, 40)
        h = vecx.fit(be, X, y, lr=0.1, batch_size=10, epochs=5, compute_dtype="float16",
                     loss_scale=vecx.LossScale(init=8.0, interval=6))  # fmt: skip
        assert h.skipped_steps == 0, be.spec
        assert h.loss_scale == 8.0 * 2**3  # 20 finite steps: grown after 6, 12 and 18


def test_the_default_rule_skips_the_first_overflowing_steps_then_trains() -> None:
    """GradScaler's start, 2^16, overflows float16 on d2l's linreg: the first steps are
    skipped, the scale backs off, and training goes on (the same count everywhere)."""
    skipped = set()
    for be in cpu_backends():
        X, y = vecx.synthetic_data(be, [2.0, -3.4], 4.2, 1000)
        h = vecx.fit(be, X, y, lr=0.03, batch_size=10, epochs=3, compute_dtype="float16")
        assert h.loss_scale == 2.0**16 * 0.5**h.skipped_steps
        assert 1 <= h.skipped_steps <= 10 and h.loss < 1e-3, (be.spec, h.skipped_steps)
        skipped.add(h.skipped_steps)
    assert len(skipped) == 1


def test_bad_loss_scales_are_one_clear_error() -> None:
    with pytest.raises(ValueError, match="loss scale needs"):
        vecx.LossScale(backoff=2.0)
    be = vecx.backend("numpy")
    X, y = vecx.synthetic_data(be, [1.0], 0.0, 20)
    with pytest.raises(ValueError, match="loss_scale must be a vecx.LossScale"):
        vecx.fit(be, X, y, lr=0.1, batch_size=10, epochs=1, compute_dtype="float16",
                 loss_scale=1024)  # fmt: skip


# --- losses within the roundoff --------------------------------------------------------------


def task_data(be: Any, task: str) -> tuple[Any, Any, dict[str, Any]]:
    if task == "linreg":  # noise 1: a final loss of ~0.5, not a difference of tiny numbers
        X, y = vecx.synthetic_data(be, [2.0, -3.4], 4.2, 1000, noise=1.0)
        return X, y, {"lr": 0.03, "batch_size": 10, "epochs": 3}
    X, Y = vecx.load_digits(be)
    return X, Y, {"lr": 0.3, "batch_size": 64, "epochs": 8}


@pytest.mark.parametrize("task", ["linreg", "softmax", "mlp"])
def test_mixed_precision_reaches_the_float32_loss_within_the_roundoff(task: str) -> None:
    """Every built-in task, every backend and policy: the final loss within TOLERANCE_U
    units of the compute dtype's roundoff of float32's; torch and JAX within AGREE_U of
    each other."""
    losses: dict[tuple[str, str], float] = {}
    for be in cpu_backends():
        X, y, hyper = task_data(be, task)
        reference = vecx.fit(be, X, y, task=task, **hyper).loss
        losses[(be.name, "float32")] = reference
        for dtype in policies(be):
            h = vecx.fit(be, X, y, task=task, compute_dtype=dtype, **hyper)
            losses[(be.name, dtype)] = h.loss
            error = abs(h.loss - reference) / reference
            assert error <= TOLERANCE_U * ROUNDOFF[dtype], (be.spec, dtype, error)
    for dtype in ("bfloat16", "float16"):
        if ("torch", dtype) in losses and ("jax", dtype) in losses:
            gap = abs(losses[("torch", dtype)] - losses[("jax", dtype)])
            assert gap <= AGREE_U * ROUNDOFF[dtype] * losses[("jax", "float32")], dtype


def test_the_softmax_of_logsumexp_is_accurate_in_low_precision_at_large_logits() -> None:
    """The gradient of ``logsumexp`` (the softmax inside every cross-entropy) within 2
    units of the dtype's roundoff of the exact softmax of the rounded logits, with logits
    near 10 as a trained classifier has them. From ``exp(x - out)``, with ``out`` rounded
    to the low dtype, it was off by ``|out|`` units: 7.5 on torch in bfloat16."""
    rng = np.random.default_rng(0)
    logits = (rng.standard_normal((64, 10)) * 3 + 8).astype(np.float32)
    for be in cpu_backends():
        for dtype in policies(be):
            x = be.astype(be.asarray(logits), dtype)
            rounded = np.asarray(be.to_numpy(be.astype(x, "float32")), np.float64)
            exact = np.exp(rounded - rounded.max(1, keepdims=True))
            exact /= exact.sum(1, keepdims=True)
            got = be.grad(lambda v, be=be: be.sum(be.logsumexp(v, axis=1)))(x)
            error = np.abs(np.asarray(be.to_numpy(be.astype(got, "float32"))) - exact).max()
            assert error <= 2 * ROUNDOFF[dtype], (be.spec, dtype, error / ROUNDOFF[dtype])


def test_float16_sums_accumulate_in_float32_on_every_backend() -> None:
    """float16 sums down 8192 rows, forward (``sum``, ``logsumexp``) and in gradients
    (a bias's un-broadcast, ties of ``max``, ``mean`` past float16's 65504), agree with
    float32's on every backend and in NumPy's replay compiler: torch and XLA accumulate
    in float32; NumPy's own float16 adds stall at 2048 (2048 + 1 rounds back to 2048)."""
    n = 8192
    for be in cpu_backends():
        if "float16" not in policies(be):
            continue
        X = be.astype(be.zeros((n, 3)), "float16")
        b = be.astype(be.zeros(3), "float16")
        big = be.astype(be.ones(70000), "float16")

        def sums(b: Any, be: Any = be, X: Any = X, big: Any = big) -> list[Any]:
            wide = lambda v: be.astype(v, "float32")  # noqa: E731
            return [
                be.sum(X + 1, axis=0),
                be.logsumexp(X, axis=0),
                be.grad(lambda b: be.sum(wide(X + b)))(b),  # the bias's un-broadcast
                be.grad(lambda X: be.sum(wide(be.max(X, axis=0))))(X)[0],  # n ties
                be.grad(lambda v: wide(be.mean(v)))(big)[:1],  # divided by 70000
            ]

        tiny = float(np.float16(1 / 70000))  # a subnormal float16
        expected = [[n] * 3, [np.log(n)] * 3, [n] * 3, [1 / n] * 3, [tiny]]
        runs = {"eager": sums}
        if be.name == "numpy":
            runs["jit"] = be.compile(sums, mode="jit").fn
        for mode, fn in runs.items():
            for _ in range(2):  # the replay compiler: traced, then replayed
                for i, (got, want) in enumerate(zip(fn(b), expected, strict=True)):
                    got = np.asarray(be.to_numpy(be.astype(got, "float32")), np.float64)
                    np.testing.assert_allclose(got, want, rtol=2 * ROUNDOFF["float16"],
                                               err_msg=f"{be.spec} {mode} #{i}")  # fmt: skip


def test_the_native_executor_refuses_a_compute_dtype() -> None:
    """The framework-native trainers have no policy: a float16 request is an error, never
    a float32 run labelled float16."""
    pytest.importorskip("torch")
    be = vecx.backend("torch")
    X, y = vecx.synthetic_data(be, [1.0], 0.0, 20)
    with pytest.raises(ValueError, match="policy of vecx's step executor"):
        vecx.fit(be, X, y, lr=0.1, batch_size=10, epochs=1, executor="native",
                 compute_dtype="float16")  # fmt: skip


def test_a_loss_promoted_past_the_parameters_is_an_error_not_a_float16_label() -> None:
    """NumPy promotes float16 minus an int64 ``y`` to float64: the step would compute in
    float64 under a float16 label. Torch and JAX keep float16 and train."""
    for be in cpu_backends():
        X, _ = vecx.synthetic_data(be, [1.0, -1.0], 0.0, 40)
        y = be.asarray(np.arange(40).reshape(40, 1) % 3, dtype="int32")
        if be.name == "numpy":
            y = np.arange(40, dtype=np.int64).reshape(40, 1) % 3
        run = dict(lr=0.01, batch_size=10, epochs=1, compute_dtype="float16")
        if be.name == "numpy":
            with pytest.raises(ValueError, match="came out in float64.*y is int64"):
                vecx.fit(be, X, y, **run)
        else:
            h = vecx.fit(be, X, y, **run)
            assert h.compute_dtype == "float16" and np.isfinite(h.loss)


def test_a_loss_scale_without_a_low_compute_dtype_is_an_error_not_ignored() -> None:
    be = vecx.backend("numpy")
    X, y = vecx.synthetic_data(be, [1.0], 0.0, 20)
    with pytest.raises(ValueError, match="loss_scale scales a low-precision step"):
        vecx.fit(be, X, y, lr=0.1, batch_size=10, epochs=1, loss_scale=vecx.LossScale())
