"""Compiled mode against hand-written compiled training, side by side in one run.

d2l's linear regression (1000 x 2, batch 10, 3 epochs = 300 steps, the whole-data loss
once per epoch), every row the same algorithm on the same data, initial parameters and
minibatches (their final parameters are checked against vecx eager NumPy's). Each row's
figure is milliseconds of training per whole run, the median of interleaved runs (row 1,
row 2, ..., row 1, ...), so drift on a shared machine falls on every row alike. vecx rows
time what ``History.times`` times (the steps, with the device synchronised; the
checkpoint evaluations and the warm-up's compilation are outside the clock); the
hand-written rows time their 300 steps the same way.

Goals (issue "Compiled mode"): JAX ``fused`` within 1.1x of a hand-written
``jax.jit(lax.scan)`` per epoch; torch ``jit`` within 1.1x of the hand-written
``torch.compile(fullgraph=True)`` step; NumPy ``jit`` (the replay compiler) within 1.3x of
the gradient written by hand. Compile cost: each compiled row's first call (cold: the
first in this process; for torch also with a fresh and with a filled inductor cache, in
subprocesses), and the break-even steps of each vecx mode against vecx eager.

    PYTHONPATH=. python bench/compiled.py              # ~2 min on 2 cores (torch compiles)
    PYTHONPATH=. python bench/compiled.py --quick      # a smoke test
    PYTHONPATH=. python bench/compiled.py --no-torch-cache   # skip the cache subprocesses
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import numpy as np  # noqa: E402

import vecx  # noqa: E402
from vecx.environment import machine_info, runtime_settings  # noqa: E402
from vecx.protocol import set_threads, thread_pools  # noqa: E402

N, D, BATCH, EPOCHS, LR = 1000, 2, 10, 3, 0.03
TRUE_W, TRUE_B = [2.0, -3.4], 4.2
#: Goals: (row, reference row, largest ratio).
GOALS = [("vecx.fit jax fused", "jax, one jax.jit(lax.scan) per epoch", 1.1),
         ("vecx.fit torch jit", "torch, step under torch.compile(fullgraph=True)", 1.1),
         ("vecx.fit numpy jit", "NumPy, gradient by hand", 1.3)]  # fmt: skip


@dataclass
class Row:
    name: str
    framework: str
    run: Callable[[], Any]  # one whole training; returns (seconds, (w, b))
    first_call_s: float | None = None
    mode: str | None = None
    samples: list[float] = field(default_factory=list)
    params: Any = None

    @property
    def ms(self) -> float:
        return 1e3 * statistics.median(self.samples)


def epoch_orders() -> list[np.ndarray]:
    """Each epoch's minibatch order, drawn as vecx.fit draws it (seed 0): the hand-written
    loops draw it inside their timing too, as d2l's ``data_iter`` shuffles every epoch."""
    rng = vecx.data.host_rng(0, "order")
    return [rng.permutation(N).astype(np.int64, copy=False) for _ in range(EPOCHS)]


def host_data() -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """The data and the initial parameters vecx.fit uses (seed 0); the order checked."""
    be = vecx.backend("numpy")
    X, y = vecx.synthetic_data(be, TRUE_W, TRUE_B, N)
    planned = vecx.training.schedule.segments(N, BATCH, EPOCHS, N,
                                              vecx.data.host_rng(0, "order"))  # fmt: skip
    for seg, order in zip(planned, epoch_orders(), strict=True):
        assert np.array_equal(np.concatenate(seg.block).ravel(), order)
    init = vecx.TASKS["linreg"].init(vecx.data.host_rng(0, "init"), D, 1)
    return np.asarray(X), np.asarray(y), init


# --- vecx ---------------------------------------------------------------------------------


def vecx_row(spec: str, mode: str | None) -> Row:
    be = vecx.backend(spec)
    set_threads(be, 1)
    X, y = vecx.synthetic_data(be, TRUE_W, TRUE_B, N)

    def run() -> tuple[float, Any]:
        h = vecx.fit(be, X, y, lr=LR, batch_size=BATCH, epochs=EPOCHS, log_every=N, mode=mode)
        return h.times[-1], (h.params["w"], h.params["b"]), h

    _, _, h = run()
    row = Row(f"vecx.fit {be.name} {h.mode}", be.name, lambda: run()[:2], h.compile_s, h.mode)
    return row


# --- written by hand ------------------------------------------------------------------------


def numpy_by_hand(data: Any) -> Row:
    X, y, init = data

    def run() -> tuple[float, Any]:
        w, b = init["w"].copy(), init["b"].copy()
        start = time.perf_counter()
        for order in epoch_orders():
            for idx in order.reshape(-1, BATCH):
                Xb, yb = X[idx], y[idx]
                err = Xb @ w + b - yb
                w = w - LR * (Xb.T @ err) / BATCH
                b = b - LR * err.mean(axis=0)
        return time.perf_counter() - start, (w, b)

    return Row("NumPy, gradient by hand", "numpy", run)


def torch_rows(data: Any) -> list[Row]:
    import torch

    torch.set_num_threads(1)
    X_, y_, init = data
    X, y = torch.from_numpy(X_), torch.from_numpy(y_)

    def blocks() -> list[Any]:
        return [torch.from_numpy(e.reshape(-1, BATCH)) for e in epoch_orders()]

    def d2l() -> tuple[float, Any]:
        w = torch.tensor(init["w"], requires_grad=True)
        b = torch.tensor(init["b"], requires_grad=True)
        start = time.perf_counter()
        for block in blocks():
            for idx in block:
                loss = ((X[idx] @ w + b - y[idx]) ** 2 / 2).mean()
                loss.backward()
                with torch.no_grad():
                    w -= LR * w.grad
                    b -= LR * b.grad
                    w.grad.zero_()
                    b.grad.zero_()
        return time.perf_counter() - start, (w.detach().numpy(), b.detach().numpy())

    def loss_fn(p: Any, Xb: Any, yb: Any) -> Any:
        return ((Xb @ p[0] + p[1] - yb) ** 2 / 2).mean()

    grad = torch.func.grad(loss_fn)

    def step(w: Any, b: Any, idx: Any, lr: Any) -> Any:
        gw, gb = grad((w, b), X[idx], y[idx])
        return w - lr * gw, b - lr * gb

    compiled = torch.compile(step, fullgraph=True, dynamic=False)
    lr = torch.tensor(LR)
    start = time.perf_counter()
    compiled(torch.from_numpy(init["w"]), torch.from_numpy(init["b"]), blocks()[0][0], lr)
    first = time.perf_counter() - start

    def compiled_run() -> tuple[float, Any]:
        w, b = torch.from_numpy(init["w"]), torch.from_numpy(init["b"])
        start = time.perf_counter()
        for block in blocks():
            for idx in block:
                w, b = compiled(w, b, idx, lr)
        return time.perf_counter() - start, (w.numpy(), b.numpy())

    return [Row("torch, d2l autograd loop", "torch", d2l),
            Row("torch, step under torch.compile(fullgraph=True)", "torch", compiled_run,
                first)]  # fmt: skip


def jax_rows(data: Any) -> list[Row]:
    import jax
    import jax.numpy as jnp

    X_, y_, init = data
    X, y = jnp.asarray(X_), jnp.asarray(y_)
    first = epoch_orders()[0].reshape(-1, BATCH)

    def loss_fn(p: Any, Xb: Any, yb: Any) -> Any:
        return ((Xb @ p[0] + p[1] - yb) ** 2 / 2).mean()

    grad = jax.grad(loss_fn)

    def step(p: Any, idx: Any) -> Any:
        gw, gb = grad(p, X[idx], y[idx])
        return p[0] - LR * gw, p[1] - LR * gb

    jit_step = jax.jit(step)

    @jax.jit
    def epoch(p: Any, block: Any) -> Any:
        return jax.lax.scan(lambda p, idx: (step(p, idx), None), p, block)[0]

    @jax.jit
    def all_epochs(p: Any, blocks: Any) -> Any:
        return jax.lax.scan(lambda p, block: (jax.lax.scan(
            lambda p, idx: (step(p, idx), None), p, block)[0], None), p, blocks)[0]

    p0 = (jnp.asarray(init["w"]), jnp.asarray(init["b"]))
    firsts = {}
    every = np.stack([first] * EPOCHS).astype(np.int32)
    for name, fn, arg in (("step", jit_step, first[0]),
                          ("epoch", epoch, jnp.asarray(first.astype(np.int32))),
                          ("all", all_epochs, jnp.asarray(every))):  # fmt: skip
        start = time.perf_counter()
        jax.block_until_ready(fn(p0, arg))
        firsts[name] = time.perf_counter() - start

    def timed(body: Callable[[Any], Any]) -> Callable[[], Any]:
        def run() -> tuple[float, Any]:
            start = time.perf_counter()
            p = jax.block_until_ready(body(p0))
            return time.perf_counter() - start, (np.asarray(p[0]), np.asarray(p[1]))
        return run

    def per_step(p: Any) -> Any:
        for order in epoch_orders():
            for idx in order.reshape(-1, BATCH):
                p = jit_step(p, idx)
        return p

    def per_epoch(p: Any) -> Any:  # each epoch's order from the host, as vecx gets it
        for order in epoch_orders():
            p = epoch(p, jnp.asarray(order.reshape(-1, BATCH).astype(np.int32)))
        return p

    def all_at_once(p: Any) -> Any:
        orders = np.stack([o.reshape(-1, BATCH) for o in epoch_orders()]).astype(np.int32)
        return all_epochs(p, jnp.asarray(orders))

    return [Row("jax, hand jax.jit step", "jax", timed(per_step), firsts["step"]),
            Row("jax, one jax.jit(lax.scan) per epoch", "jax", timed(per_epoch), firsts["epoch"]),
            Row("jax, one lax.scan over all epochs", "jax",
                timed(all_at_once), firsts["all"])]  # fmt: skip


# --- the torch.compile cache, cold and warm, in fresh processes ----------------------------


def torch_first_calls() -> dict[str, float]:
    """vecx torch jit's compile_s in a fresh process with an empty inductor cache, then in
    another with the cache the first one filled."""
    code = ("import vecx;be=vecx.backend('torch');X,y=vecx.synthetic_data(be,[2.0,-3.4],4.2,"
            f"{N});h=vecx.fit(be,X,y,lr={LR},batch_size={BATCH},epochs=1,mode='jit');"
            "print(h.compile_s)")  # fmt: skip
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache,
               "PYTHONPATH": str(Path(__file__).resolve().parents[1])}  # fmt: skip
        for label in ("cold", "warm"):
            done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                                  text=True, timeout=600, check=True)  # fmt: skip
            out[label] = float(done.stdout.strip().splitlines()[-1])
    return out


# --- the report ---------------------------------------------------------------------------


def block_run(row: Row) -> None:
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        seconds, params = row.run()
    finally:
        if gc_was_on:
            gc.enable()
    row.samples.append(seconds)
    row.params = params


def describe_machine(backends: list[str]) -> str:
    m = machine_info()
    lines = [f"machine: {m['cpu']}, {m['cores']} logical CPUs, Python {m['python']}, "
             f"load average {os.getloadavg()[0]:.2f} (start)"]
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS"):
        if var in os.environ:
            lines.append(f"{var}={os.environ[var]}")
    for pool in runtime_settings().get("blas") or []:
        lines.append(f"blas: {pool.get('internal_api')} {pool.get('version')} "
                     f"threads={pool.get('num_threads')}")
    for spec in backends:
        be = vecx.backend(spec)
        set_threads(be, 1)
        info = be.info()
        pools = ", ".join(f"{p.get('library')} {p.get('pool')} {p.get('threads')}"
                          for p in thread_pools(be))
        lines.append(f"{spec}: {info['framework']} {info['version']}, threads: {pools or '?'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 runs per row; rough numbers")
    parser.add_argument("--runs", type=int, default=None, help="interleaved runs (default 21)")
    parser.add_argument("--no-torch-cache", action="store_true",
                        help="skip measuring torch.compile with a fresh and a filled cache")
    args = parser.parse_args(argv)
    runs = args.runs or (3 if args.quick else 21)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    available = {s.name for s in vecx.list_backends() if s.available and s.device == "cpu"}
    data = host_data()
    rows: list[Row] = [vecx_row("numpy", "eager"), numpy_by_hand(data), vecx_row("numpy", "jit")]
    if "torch" in available:
        rows += [vecx_row("torch", "eager"), *torch_rows(data), vecx_row("torch", "jit")]
    if "jax" in available:
        rows += [vecx_row("jax", "eager"), vecx_row("jax", "jit"), *jax_rows(data),
                 vecx_row("jax", "fused")]  # fmt: skip
    print(describe_machine(sorted(available & {"numpy", "torch", "jax"})))
    print(f"linreg {N} x {D}, batch {BATCH}, {EPOCHS} epochs = {N // BATCH * EPOCHS} steps; "
          f"medians of {runs} interleaved runs per row, 1 thread everywhere\n")
    for _ in range(runs):
        for row in rows:
            block_run(row)
    reference = rows[0].params
    by_name = {r.name: r for r in rows}
    eager = {r.framework: r for r in rows if r.mode == "eager"}
    default = {r.framework: r for r in rows
               if r.mode == ("jit" if r.framework == "jax" else "eager")}  # fmt: skip
    print("| implementation | ms | vs vecx.fit of that framework (its default mode) | "
          "first call s | break-even steps vs eager | final parameters |")
    print("|---|---:|---:|---:|---:|---|")
    steps = N // BATCH * EPOCHS
    for row in rows:
        base = eager.get(row.framework)
        same = all(np.allclose(a, b, rtol=1e-4, atol=1e-5)
                   for a, b in zip(row.params, reference, strict=True))  # fmt: skip
        first = "-" if not row.first_call_s else f"{row.first_call_s:.3g}"
        even = "-"
        if row.mode in ("jit", "fused") and base is not None:
            saved = (base.ms - row.ms) / 1e3 / steps
            cost = (row.first_call_s or 0.0) - (base.first_call_s or 0.0)
            even = f"{max(0.0, cost) / saved:,.0f}" if saved > 0 else "never"
        print(f"| {row.name} | {row.ms:.3g} | {row.ms / default[row.framework].ms:.2f} | "
              f"{first} | {even} | "
              f"{'same' if same else 'DIFFERENT'} |")
    print(f"\nload average {os.getloadavg()[0]:.2f} (end)")
    for mine, theirs, limit in GOALS:
        if mine in by_name and theirs in by_name:
            ratio = by_name[mine].ms / by_name[theirs].ms
            verdict = "met" if ratio <= limit else "MISSED"
            print(f"goal {mine} <= {limit}x {theirs}: {ratio:.2f}x, {verdict}")
    if "torch" in available and not args.no_torch_cache and not args.quick:
        firsts = torch_first_calls()
        print(f"vecx torch jit first call in a fresh process: {firsts['cold']:.2f} s with an "
              f"empty inductor cache, {firsts['warm']:.2f} s with the cache it filled")
    return 0


if __name__ == "__main__":
    sys.exit(main())
