"""What does writing the trainer once cost? ``vecx.fit`` against hand-written loops.

For each available backend and task, times ``vecx.fit`` (the preset's task, on data loaded
once) against the same loop written directly in the framework, as d2l writes it:

* ``linreg`` (d2l's "linear regression from scratch": n=1000, 2 features, batch 10, lr
  0.03, 3 epochs = 300 steps) and ``digits-mlp`` (1797 8x8 digits, one hidden ReLU layer
  of 64, softmax cross-entropy, batch 64, 10 epochs = 290 steps);
* PyTorch: parameters with ``requires_grad``, ``loss.backward()``, then an in-place SGD
  update under ``torch.no_grad()`` and ``grad.zero_()``;
* JAX: a ``jax.jit`` step built with ``jax.grad`` that also gathers the minibatch;
* NumPy (and CuPy): the gradient written out by hand.

Both sides see the same data, initial parameters and minibatch order, and evaluate the
whole-data loss (and, for the classifier, the accuracy) once per epoch; the final
parameters are checked to agree. Each repetition times one whole call, wall clock, after
one untimed warm-up call of each (so JAX's compilation is excluded on both sides); the two
are interleaved, alternating which goes first. The table shows the median time of each and
the median of the per-repetition ratios. Goals on a CPU (issue "vecx for any model"):
ratio <= 1.1 for torch and jax, <= 2.5 for numpy. CUDA rows (torch:cuda, jax:cuda,
cupy:cuda) appear wherever such a backend is available. BLAS threads are set to 1 (the
machine has 2 cores shared with other jobs; see bench/README.md) unless --threads says.

    PYTHONPATH=. python bench/trainer_overhead.py [--repeat 21] [--backends numpy,torch]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import vecx  # noqa: E402
from vecx.data import host_rng  # noqa: E402
from vecx.training import TASKS  # noqa: E402

SEED = 0
GOALS = {"numpy": 2.5, "cupy": 2.5, "torch": 1.1, "jax": 1.1}
CANDIDATES = ("numpy", "torch:cpu", "jax:cpu", "torch:cuda", "jax:cuda", "cupy:cuda")
PRESETS = ("linreg", "digits-mlp")


def host_init(preset: str, d: int, k: int) -> dict[str, np.ndarray]:
    """The same initial parameters as vecx.fit: the task's host draw from the seed."""
    task = TASKS[vecx.PRESETS[preset].task]
    return task.init(host_rng(SEED, "init"), d, k)


def orders(n: int) -> Callable[[], np.ndarray]:
    """Each call: the next epoch's shuffle, as vecx.data_iter draws it."""
    rng = host_rng(SEED, "order")
    return lambda: rng.permutation(n).astype(np.int64)


# --- the hand-written loops --------------------------------------------------------------


def hand_array(xp: Any, preset: str) -> Callable[[Any, Any], Any]:
    """NumPy/CuPy with the gradient written out (d2l has no NumPy version; this is it)."""
    p = vecx.PRESETS[preset]
    lr, batch, epochs = p.lr, p.batch_size, p.epochs

    def linreg(X: Any, y: Any) -> Any:
        n, d = X.shape
        init = host_init(preset, d, 1)
        w, b = xp.asarray(init["w"]), xp.asarray(init["b"])
        next_order = orders(n)
        for _ in range(epochs):
            order = next_order()
            for i in range(0, n, batch):
                idx = xp.asarray(order[i : i + batch])  # to the device (CuPy); free on NumPy
                Xb, yb = X[idx], y[idx]
                err = Xb @ w + b - yb  # d(mean of err^2/2)/d(Xw+b) = err / m
                m = idx.shape[0]
                w = w - lr * (Xb.T @ err) / m
                b = b - lr * err.mean(axis=0)
            err = X @ w + b - y
            float((err * err / 2).mean())
        return {"w": w, "b": b}

    def mlp(X: Any, Y: Any) -> Any:
        n, d = X.shape
        params = {k: xp.asarray(v) for k, v in host_init(preset, d, Y.shape[1]).items()}
        W1, b1, W2, b2 = (params[k] for k in ("W1", "b1", "W2", "b2"))
        next_order = orders(n)

        def forward(Xb: Any) -> tuple[Any, Any, Any]:
            pre = Xb @ W1 + b1
            hidden = xp.maximum(pre, 0.0)
            return pre, hidden, hidden @ W2 + b2

        for _ in range(epochs):
            order = next_order()
            for i in range(0, n, batch):
                idx = xp.asarray(order[i : i + batch])
                Xb, Yb = X[idx], Y[idx]
                pre, hidden, Z = forward(Xb)
                E = xp.exp(Z - Z.max(axis=1, keepdims=True))
                dZ = (E / E.sum(axis=1, keepdims=True) - Yb) / idx.shape[0]  # softmax - y
                dpre = (dZ @ W2.T) * (pre > 0)
                W2 = W2 - lr * (hidden.T @ dZ)
                b2 = b2 - lr * dZ.sum(axis=0)
                W1 = W1 - lr * (Xb.T @ dpre)
                b1 = b1 - lr * dpre.sum(axis=0)
            _, _, Z = forward(X)
            top = Z.max(axis=1, keepdims=True)
            lse = xp.log(xp.exp(Z - top).sum(axis=1)) + top[:, 0]
            float((lse - (Y * Z).sum(axis=1)).mean())
            float(((Y * Z).sum(axis=1) >= top[:, 0]).mean())
        return {"W1": W1, "b1": b1, "W2": W2, "b2": b2}

    return linreg if preset == "linreg" else mlp


def hand_torch(device: str, preset: str) -> Callable[[Any, Any], Any]:
    import torch

    p = vecx.PRESETS[preset]
    lr, batch, epochs = p.lr, p.batch_size, p.epochs

    zero = torch.zeros((), device=device)

    def relu(X: Any) -> Any:  # d2l's own: torch.max(X, zeros), an elementwise maximum
        return torch.maximum(X, zero)

    def loss_of(params: dict[str, Any], Xb: Any, yb: Any) -> Any:
        if preset == "linreg":
            return ((Xb @ params["w"] + params["b"] - yb) ** 2 / 2).mean()
        hidden = relu(Xb @ params["W1"] + params["b1"])
        Z = hidden @ params["W2"] + params["b2"]
        return (torch.logsumexp(Z, dim=1) - (yb * Z).sum(dim=1)).mean()

    def train(X: Any, y: Any) -> Any:
        n, d = X.shape
        k = y.shape[1]
        params = {name: torch.tensor(v, device=device, requires_grad=True)
                  for name, v in host_init(preset, d, k).items()}  # fmt: skip
        next_order = orders(n)
        for _ in range(epochs):
            order = next_order()
            for i in range(0, n, batch):
                idx = torch.as_tensor(order[i : i + batch], device=device)
                loss_of(params, X[idx], y[idx]).backward()
                with torch.no_grad():
                    for param in params.values():
                        param -= lr * param.grad
                        param.grad.zero_()
            with torch.no_grad():
                float(loss_of(params, X, y))
                if preset != "linreg":
                    hidden = relu(X @ params["W1"] + params["b1"])
                    Z = hidden @ params["W2"] + params["b2"]
                    float((Z.argmax(dim=1) == y.argmax(dim=1)).float().mean())
        return {name: v.detach() for name, v in params.items()}

    return train


def hand_jax(device: Any, preset: str) -> Callable[[Any, Any], Any]:
    """The gather sits inside the jitted step: eager ``X[idx]`` costs ~300 us in JAX 0.10
    (``jnp.take`` ~12 us), more than the whole compiled step, so this is the fast way."""
    import jax
    import jax.numpy as jnp

    p = vecx.PRESETS[preset]
    lr, batch, epochs = p.lr, p.batch_size, p.epochs

    def logits(params: Any, X: Any) -> Any:
        hidden = jnp.maximum(X @ params["W1"] + params["b1"], 0)  # d2l's relu
        return hidden @ params["W2"] + params["b2"]

    def loss(params: Any, Xb: Any, yb: Any) -> Any:
        if preset == "linreg":
            return ((Xb @ params["w"] + params["b"] - yb) ** 2 / 2).mean()
        Z = logits(params, Xb)
        return (jax.nn.logsumexp(Z, axis=1) - (yb * Z).sum(axis=1)).mean()

    @jax.jit
    def step(params: Any, X: Any, y: Any, idx: Any) -> Any:
        grads = jax.grad(loss)(params, X[idx], y[idx])
        return jax.tree_util.tree_map(lambda q, g: q - lr * g, params, grads)

    @jax.jit
    def evaluate(params: Any, X: Any, y: Any) -> Any:
        if preset == "linreg":
            return loss(params, X, y), 0.0
        Z = logits(params, X)
        return loss(params, X, y), jnp.mean(jnp.argmax(Z, axis=1) == jnp.argmax(y, axis=1))

    def train(X: Any, y: Any) -> Any:
        n, d = X.shape
        params = {k: jax.device_put(v, device)
                  for k, v in host_init(preset, d, y.shape[1]).items()}  # fmt: skip
        next_order = orders(n)
        for _ in range(epochs):
            order = next_order()
            for i in range(0, n, batch):
                params = step(params, X, y, order[i : i + batch])
            value, acc = evaluate(params, X, y)
            float(value), float(acc)
        return params

    return train


def hand_loop(be: Any, preset: str) -> Callable[[Any, Any], Any]:
    if be.name == "numpy":
        return hand_array(np, preset)
    if be.name == "cupy":
        return hand_array(be.xp, preset)
    if be.name == "torch":
        return hand_torch(be.device, preset)
    if be.name == "jax":
        import jax

        kind, _, ordinal = be.device.partition(":")  # "cpu" or "cuda:N"
        device = jax.devices("gpu" if kind == "cuda" else "cpu")[int(ordinal or 0)]
        return hand_jax(device, preset)
    raise NotImplementedError(be.name)


# --- timing ------------------------------------------------------------------------------


def bench(be: Any, preset: str, repeat: int) -> dict[str, Any]:
    p = vecx.PRESETS[preset]
    X, y = p.load(be, seed=SEED)
    hand = hand_loop(be, preset)

    def run_vecx() -> Any:  # the preset's run on the same data (loaded once, as by hand)
        return vecx.fit(be, X, y, task=p.task, lr=p.lr, batch_size=p.batch_size,
                        epochs=p.epochs, seed=SEED, log_every=p.examples)  # once per epoch

    def run_hand() -> Any:
        out = hand(X, y)
        be.sync(next(iter(out.values())))
        return out

    history, by_hand = run_vecx(), run_hand()  # warm-up (and JAX compilation)
    agree = all(
        np.allclose(history.params[k], be.to_numpy(v), rtol=1e-3, atol=1e-5)
        for k, v in by_hand.items()
    )
    times: dict[str, list[float]] = {"hand": [], "vecx": []}
    for r in range(repeat):
        pair = (("hand", run_hand), ("vecx", run_vecx))
        for name, fn in pair if r % 2 else pair[::-1]:
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    hand_s, vecx_s = (statistics.median(times[k]) for k in ("hand", "vecx"))
    steps = p.epochs * -(-p.examples // p.batch_size)
    # The ratio is the median of per-repetition ratios: each pair ran back to back, so
    # a load change on a shared machine moves both of its numbers together.
    ratio = statistics.median(v / h for v, h in zip(times["vecx"], times["hand"], strict=True))
    return {
        "spec": be.spec,
        "preset": preset,
        "steps": steps,
        "hand_ms": hand_s * 1e3,
        "vecx_ms": vecx_s * 1e3,
        "added_us_per_step": (vecx_s - hand_s) / steps * 1e6,
        "ratio": ratio,
        "goal": GOALS[be.name],
        "agree": bool(agree),
        "loss": history.loss,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=21, help="timed calls of each (odd)")
    parser.add_argument("--backends", default=None, help="comma-separated specs to run")
    parser.add_argument("--presets", default=",".join(PRESETS), help="comma-separated presets")
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS and torch threads (default 1; 0 leaves them as they are)")
    args = parser.parse_args(argv)
    if args.threads:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
    wanted = [s.strip() for s in args.backends.split(",")] if args.backends else CANDIDATES
    presets = [s.strip() for s in args.presets.split(",") if s.strip()]
    rows = []
    for spec in wanted:
        try:
            be = vecx.backend(spec)
        except vecx.VecxError as exc:
            print(f"# skipped {spec}: {exc}", file=sys.stderr)
            continue
        if be.name == "torch" and args.threads:
            be.xp.set_num_threads(args.threads)
        for preset in presets:
            rows.append(bench(be, preset, args.repeat))
    cpu = vecx.backend("numpy").info()["device_name"]
    print(f"# vecx.fit vs hand-written loop, median of {args.repeat} interleaved calls; "
          f"threads: {args.threads or 'as set'}; load {os.getloadavg()[0]:.2f}")
    print(f"# {dt.date.today()} | {cpu} | {platform.python_version()}")
    header = ("| backend | preset | steps | hand-written (ms) | vecx.fit (ms) | "
              "added per step (us) | ratio | goal | same params |")
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    ok = True
    for r in rows:
        met = r["ratio"] <= r["goal"]
        ok &= met and r["agree"]
        print(f"| {r['spec']} | {r['preset']} | {r['steps']} | {r['hand_ms']:.2f} | "
              f"{r['vecx_ms']:.2f} | {r['added_us_per_step']:+.1f} | {r['ratio']:.2f} | "
              f"<= {r['goal']:g}{'' if met else ' (missed)'} | {'yes' if r['agree'] else 'NO'} |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
