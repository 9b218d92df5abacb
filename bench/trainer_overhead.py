"""What does writing the trainer once cost? ``vecx.fit`` against hand-written loops.

For each available backend, times ``vecx.fit`` on the ``linreg`` preset (d2l's "linear
regression from scratch": n=1000, 2 features, batch 10, lr 0.03, 3 epochs) against the
same loop written directly in the framework, as d2l writes it:

* PyTorch: parameters with ``requires_grad``, ``loss.sum().backward()``, then an in-place
  SGD update under ``torch.no_grad()`` and ``grad.zero_()``;
* JAX: a ``jax.jit`` step built with ``jax.grad`` that also gathers the minibatch;
* NumPy (and CuPy): the gradient written by hand, ``X.T @ (Xw + b - y) / m``.

Both sides see the same data, initial parameters and minibatch order, and evaluate the
whole-data loss once per epoch (d2l prints it); the final parameters are checked to agree.
Each repetition times one whole call, wall clock, after one untimed warm-up call of each
(so JAX's compilation is excluded on both sides); the two are interleaved, alternating
which goes first. The table shows the median time of each and the median of the
per-repetition ratios. Goals on a CPU: ratio <= 1.2 for torch
and jax, <= 3 for numpy. CUDA rows (torch:cuda, jax:cuda, cupy:cuda) appear wherever such
a backend is available.

    PYTHONPATH=. python bench/trainer_overhead.py [--repeat 21] [--backends numpy,torch]
"""

from __future__ import annotations

import argparse
import datetime as dt
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

PRESET = vecx.PRESETS["linreg"]
LR, BATCH, EPOCHS, SEED = PRESET.lr, PRESET.batch_size, PRESET.epochs, 0
N = 1000
GOALS = {"numpy": 3.0, "cupy": 3.0, "torch": 1.2, "jax": 1.2}
CANDIDATES = ("numpy", "torch:cpu", "jax:cpu", "torch:cuda", "jax:cuda", "cupy:cuda")


def host_init(d: int) -> tuple[np.ndarray, np.ndarray]:
    """The same initial parameters as vecx.fit (host draw, float32)."""
    w = host_rng(SEED, "init").normal(0.0, 0.01, (d, 1)).astype(np.float32)
    return w, np.zeros(1, np.float32)


def orders(n: int) -> Callable[[], np.ndarray]:
    """Each call: the next epoch's shuffle, as vecx.data_iter draws it."""
    rng = host_rng(SEED, "order")
    return lambda: rng.permutation(n).astype(np.int64)


# --- the hand-written loops --------------------------------------------------------------


def hand_array(xp: Any) -> Callable[[Any, Any], Any]:
    """NumPy/CuPy with the gradient written out (d2l has no NumPy version; this is it)."""

    def train(X: Any, y: Any) -> Any:
        n, d = X.shape
        w0, b0 = host_init(d)
        w, b = xp.asarray(w0), xp.asarray(b0)
        next_order = orders(n)
        for _ in range(EPOCHS):
            order = next_order()
            for i in range(0, n, BATCH):
                idx = xp.asarray(order[i : i + BATCH])  # to the device (CuPy); free on NumPy
                Xb, yb = X[idx], y[idx]
                err = Xb @ w + b - yb  # d(mean of err^2/2)/d(Xw+b) = err / m
                m = idx.shape[0]
                w = w - LR * (Xb.T @ err) / m
                b = b - LR * err.mean(axis=0)
            err = X @ w + b - y
            float((err * err / 2).mean())
        return w, b

    return train


def hand_torch(device: str) -> Callable[[Any, Any], Any]:
    import torch

    def train(X: Any, y: Any) -> Any:
        n, d = X.shape
        w0, b0 = host_init(d)
        w = torch.tensor(w0, device=device, requires_grad=True)
        b = torch.tensor(b0, device=device, requires_grad=True)
        next_order = orders(n)
        for _ in range(EPOCHS):
            order = next_order()
            for i in range(0, n, BATCH):
                idx = torch.as_tensor(order[i : i + BATCH], device=device)
                Xb, yb = X[idx], y[idx]
                loss = (Xb @ w + b - yb) ** 2 / 2
                loss.sum().backward()
                with torch.no_grad():
                    for p in (w, b):
                        p -= LR * p.grad / len(idx)
                        p.grad.zero_()
            with torch.no_grad():
                float(((X @ w + b - y) ** 2 / 2).mean())
        return w.detach(), b.detach()

    return train


def hand_jax(device: Any) -> Callable[[Any, Any], Any]:
    """The gather sits inside the jitted step: eager ``X[idx]`` costs ~300 us in JAX 0.10
    (``jnp.take`` ~12 us), more than the whole compiled step, so this is the fast way."""
    import jax

    def loss(params: Any, Xb: Any, yb: Any) -> Any:
        w, b = params
        return ((Xb @ w + b - yb) ** 2 / 2).mean()

    @jax.jit
    def step(params: Any, X: Any, y: Any, idx: Any) -> Any:
        grads = jax.grad(loss)(params, X[idx], y[idx])
        return tuple(p - LR * g for p, g in zip(params, grads, strict=True))

    evaluate = jax.jit(loss)

    def train(X: Any, y: Any) -> Any:
        n, d = X.shape
        w0, b0 = host_init(d)
        params = (jax.device_put(w0, device), jax.device_put(b0, device))
        next_order = orders(n)
        for _ in range(EPOCHS):
            order = next_order()
            for i in range(0, n, BATCH):
                params = step(params, X, y, order[i : i + BATCH])
            float(evaluate(params, X, y))
        return params

    return train


def hand_loop(be: Any) -> Callable[[Any, Any], Any]:
    if be.name == "numpy":
        return hand_array(np)
    if be.name == "cupy":
        return hand_array(be.xp)
    if be.name == "torch":
        return hand_torch(be.device)
    if be.name == "jax":
        import jax

        kind, _, ordinal = be.device.partition(":")  # "cpu" or "cuda:N"
        return hand_jax(jax.devices("gpu" if kind == "cuda" else "cpu")[int(ordinal or 0)])
    raise NotImplementedError(be.name)


# --- timing ------------------------------------------------------------------------------


def bench(be: Any, repeat: int) -> dict[str, Any]:
    X, y = vecx.synthetic_data(be, [2.0, -3.4], 4.2, N, seed=SEED)
    hand = hand_loop(be)

    def run_vecx() -> Any:
        return vecx.fit(be, X, y, lr=LR, batch_size=BATCH, epochs=EPOCHS, seed=SEED,
                        log_every=N)

    def run_hand() -> Any:
        out = hand(X, y)
        be.sync(out[0])
        return out

    history, (w_hand, b_hand) = run_vecx(), run_hand()  # warm-up (and JAX compilation)
    agree = np.allclose(history.params["w"], be.to_numpy(w_hand), rtol=1e-4, atol=1e-6) and (
        np.allclose(history.params["b"], be.to_numpy(b_hand), rtol=1e-4, atol=1e-6)
    )
    times: dict[str, list[float]] = {"hand": [], "vecx": []}
    for r in range(repeat):
        pair = (("hand", run_hand), ("vecx", run_vecx))
        for name, fn in pair if r % 2 else pair[::-1]:
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    hand_s, vecx_s = (statistics.median(times[k]) for k in ("hand", "vecx"))
    steps = EPOCHS * -(-N // BATCH)
    # The ratio is the median of per-repetition ratios: each pair ran back to back, so
    # a load change on a shared machine moves both of its numbers together.
    ratio = statistics.median(v / h for v, h in zip(times["vecx"], times["hand"], strict=True))
    return {
        "spec": be.spec,
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
    args = parser.parse_args(argv)
    wanted = [s.strip() for s in args.backends.split(",")] if args.backends else CANDIDATES
    rows = []
    for spec in wanted:
        try:
            be = vecx.backend(spec)
        except vecx.VecxError as exc:
            print(f"# skipped {spec}: {exc}", file=sys.stderr)
            continue
        rows.append(bench(be, args.repeat))
    cpu = vecx.backend("numpy").info()["device_name"]
    print(f"# vecx.fit vs hand-written loop, linreg preset ({EPOCHS} epochs x "
          f"{N // BATCH} steps), median of {args.repeat} interleaved calls")
    print(f"# {dt.date.today()} | {cpu} | {platform.python_version()}")
    header = ("| backend | hand-written (ms) | vecx.fit (ms) | added per step (us) | ratio | goal "
              "| same params |")
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    ok = True
    for r in rows:
        met = r["ratio"] <= r["goal"]
        ok &= met and r["agree"]
        print(f"| {r['spec']} | {r['hand_ms']:.2f} | {r['vecx_ms']:.2f} | "
              f"{r['added_us_per_step']:+.1f} | {r['ratio']:.2f} | <= {r['goal']:g}"
              f"{'' if met else ' (missed)'} | {'yes' if r['agree'] else 'NO'} |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
