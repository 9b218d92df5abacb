"""What a vecx protocol call costs on top of the same call written directly in the framework.

Each row times the direct call and the vecx call side by side in one run. Blocks of calls
alternate in the order direct, vecx, vecx, direct, ... so that drift on a shared, noisy
machine (frequency changes, a neighbour's job) falls on both alike; garbage collection is
off while a block runs; each figure is a median over many blocks. The ratio and the added
cost are medians over adjacent (direct, vecx) block pairs, which cancels slow drift better
than comparing two overall medians. Both variants synchronise the same way (JAX
``block_until_ready``, a CUDA synchronize), so that neither profits from asynchronous
dispatch.

Goals: ``matmul`` 256x256 float32 within 5% of ``a @ b``; ``index`` of 10 rows from 1000x2
with host integer indices at most 0.5 us above the framework's own gather; the NumPy
autodiff ``value_and_grad`` of the d2l linear-regression step (batch 10, 2 features) within
2x of the hand-written gradient (issue "vecx for any model"), and of the digits MLP step
(batch 64, 64 -> 64 ReLU -> 10, softmax cross-entropy) for information.

    PYTHONPATH=. python bench/overhead.py            # ~45 s on 2 cores, ~1 min with GPUs
    PYTHONPATH=. python bench/overhead.py --quick    # a smoke test, a few seconds
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import numpy as np  # noqa: E402

import vecx  # noqa: E402
from vecx.environment import machine_info, runtime_settings  # noqa: E402

MATMUL_N = 256
INDEX_ROWS, INDEX_TAKE = 1000, 10
BATCH, FEATURES = 10, 2


@dataclass
class Row:
    backend: str
    call: str
    direct_s: float  # median seconds per direct call
    vecx_s: float  # median seconds per vecx call
    ratio: float  # median over block pairs of vecx / direct
    added_s: float  # median over block pairs of (vecx - direct), per call
    goal: str  # "ratio<=1.05", "added<=0.5us", "ratio<=3", or "" for information only

    @property
    def met(self) -> bool | None:
        if not self.goal:
            return None
        kind, _, limit = self.goal.partition("<=")
        if kind == "added":
            return self.added_s <= float(limit.removesuffix("us")) * 1e-6
        return self.ratio <= float(limit)


def _block(fn: Callable[[], Any], number: int) -> float:
    """Seconds per call over ``number`` calls, garbage collection off."""
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(number):
            fn()
        return (time.perf_counter() - start) / number
    finally:
        if gc_was_on:
            gc.enable()


def _calibrate(fn: Callable[[], Any], block_s: float) -> int:
    """Calls per block so that one block takes about ``block_s``."""
    number = 1
    while True:
        per_call = _block(fn, number)
        if per_call * number >= block_s / 10 or number >= 1_000_000:
            return max(1, int(block_s / max(per_call, 1e-9)))
        number *= 10


def compare(
    direct: Callable[[], Any], via: Callable[[], Any], *, seconds: float, block_s: float = 0.005
) -> tuple[float, float, float, float]:
    """(direct median, vecx median, median ratio, median added) in seconds per call."""
    for fn in (direct, via, direct, via):  # warm up: caches, compilation, allocator
        _block(fn, 3)
    number = _calibrate(direct, block_s)
    pairs = max(5, int(seconds / (2 * block_s)))
    d_times, v_times = [], []
    for i in range(pairs):
        if i % 2 == 0:
            d, v = _block(direct, number), _block(via, number)
        else:
            v, d = _block(via, number), _block(direct, number)
        d_times.append(d)
        v_times.append(v)
    ratios = [v / d for d, v in zip(d_times, v_times, strict=True)]
    added = [v - d for d, v in zip(d_times, v_times, strict=True)]
    return (
        statistics.median(d_times),
        statistics.median(v_times),
        statistics.median(ratios),
        statistics.median(added),
    )


# --------------------------------------------------------------------------- the framework side


def _framework(be: Any) -> dict[str, Any]:
    """The direct calls and the synchronisation for ``be``'s framework and device.

    ``gather(x, idx)`` is the fastest direct gather we know for a host int64 array, so the
    added cost is measured against the best a user could write: PyTorch via
    ``torch.from_numpy`` (``x[idx]`` with a NumPy index is ~1.5 us slower), JAX via
    ``jnp.take`` (``x[idx]`` takes ~300 us in JAX 0.10 on the CPU).
    """
    if be.name == "numpy":
        return {"sync": lambda y: y, "gather": lambda x, i: x[i], "gather_dev": lambda x, i: x[i]}
    if be.name == "torch":
        import torch

        device = torch.device(be.device)
        if device.type == "cuda":

            def sync(y: Any) -> Any:
                torch.cuda.synchronize(device)
                return y

            return {
                "sync": sync,
                "gather": lambda x, i: x[torch.from_numpy(i).to(device)],
                "gather_dev": lambda x, i: x[i],
            }
        return {
            "sync": lambda y: y,
            "gather": lambda x, i: x[torch.from_numpy(i)],
            "gather_dev": lambda x, i: x[i],
        }
    if be.name == "jax":
        import jax.numpy as jnp

        return {
            "sync": lambda y: y.block_until_ready(),
            "gather": lambda x, i: jnp.take(x, i, axis=0),
            "gather_dev": lambda x, i: jnp.take(x, i, axis=0),
        }
    if be.name == "cupy":
        import cupy

        def cupy_sync(y: Any) -> Any:
            cupy.cuda.get_current_stream().synchronize()
            return y

        return {
            "sync": cupy_sync,
            "gather": lambda x, i: x[cupy.asarray(i)],
            "gather_dev": lambda x, i: x[i],
        }
    raise ValueError(f"no direct calls written for {be.name}")


def bench_backend(be: Any, *, seconds: float) -> list[Row]:
    fw = _framework(be)
    sync, gather, gather_dev = fw["sync"], fw["gather"], fw["gather_dev"]
    rows = []

    a = be.normal(0.0, 1.0, (MATMUL_N, MATMUL_N))
    b = be.normal(0.0, 1.0, (MATMUL_N, MATMUL_N))
    d, v, r, add = compare(lambda: sync(a @ b), lambda: sync(be.matmul(a, b)), seconds=seconds)
    rows.append(Row(be.spec, f"matmul {MATMUL_N}x{MATMUL_N} f32", d, v, r, add, "ratio<=1.05"))

    x = be.normal(0.0, 1.0, (INDEX_ROWS, 2))
    idx = np.random.default_rng(0).integers(0, INDEX_ROWS, INDEX_TAKE)  # host int64
    d, v, r, add = compare(
        lambda: sync(gather(x, idx)), lambda: sync(be.index(x, idx)), seconds=seconds
    )
    rows.append(Row(be.spec, f"index {INDEX_TAKE} of {INDEX_ROWS}x2, host", d, v, r, add,
                    "added<=0.5us"))

    idx_dev = be.asarray(idx)
    d, v, r, add = compare(
        lambda: sync(gather_dev(x, idx_dev)), lambda: sync(be.index(x, idx_dev)), seconds=seconds
    )
    rows.append(Row(be.spec, f"index {INDEX_TAKE} of {INDEX_ROWS}x2, device", d, v, r, add, ""))
    return rows


def bench_autodiff(*, seconds: float) -> Row:
    """NumPy: vecx's reverse mode against the gradient written out by hand."""
    be = vecx.backend("numpy")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((BATCH, FEATURES)).astype(np.float32)
    y = rng.standard_normal((BATCH, 1)).astype(np.float32)
    params = {"w": rng.standard_normal((FEATURES, 1)).astype(np.float32),
              "b": np.zeros(1, np.float32)}

    def loss(p: dict[str, Any], X: Any, y: Any) -> Any:  # d2l: squared loss, batch mean
        err = X @ p["w"] + p["b"] - y
        return (err**2 / 2).mean()

    def by_hand(p: dict[str, Any], X: Any, y: Any) -> tuple[Any, dict[str, Any]]:
        err = X @ p["w"] + p["b"] - y
        n = err.shape[0]
        return (err**2 / 2).mean(), {"w": X.T @ err / n, "b": err.sum(axis=0) / n}

    value_and_grad = be.value_and_grad(loss)
    got, want = value_and_grad(params, X, y), by_hand(params, X, y)
    for k in params:  # the comparison is void if the two disagree
        np.testing.assert_allclose(got[1][k], want[1][k], rtol=1e-5, atol=1e-6)
    d, v, r, add = compare(
        lambda: by_hand(params, X, y), lambda: value_and_grad(params, X, y), seconds=seconds
    )
    return Row("numpy:cpu", f"value_and_grad linreg ({BATCH}x{FEATURES})", d, v, r, add,
               "ratio<=2")


def bench_autodiff_mlp(*, seconds: float) -> Row:
    """NumPy: vecx's reverse mode on the digits-mlp task's loss against its gradient by hand."""
    from vecx.training import TASKS

    be = vecx.backend("numpy")
    task = TASKS["mlp"]
    X, Y = vecx.load_digits(be, 64)
    params = {k: np.asarray(v) for k, v in task.init(np.random.default_rng(0), 64, 10).items()}

    def loss(p: dict[str, Any], X: Any, Y: Any) -> Any:
        return task.loss(be, p, X, Y)

    def by_hand(p: dict[str, Any], X: Any, Y: Any) -> tuple[Any, dict[str, Any]]:
        pre = X @ p["W1"] + p["b1"]
        hidden = np.maximum(pre, 0.0)
        Z = hidden @ p["W2"] + p["b2"]
        top = Z.max(axis=1, keepdims=True)
        E = np.exp(Z - top)
        total = E.sum(axis=1, keepdims=True)
        value = (np.log(total[:, 0]) + top[:, 0] - (Y * Z).sum(axis=1)).mean()
        dZ = (E / total - Y) / X.shape[0]
        dpre = (dZ @ p["W2"].T) * (pre > 0)
        return value, {"W1": X.T @ dpre, "b1": dpre.sum(axis=0), "W2": hidden.T @ dZ,
                       "b2": dZ.sum(axis=0)}  # fmt: skip

    value_and_grad = be.value_and_grad(loss)
    got, want = value_and_grad(params, X, Y), by_hand(params, X, Y)
    for k in params:  # the comparison is void if the two disagree
        np.testing.assert_allclose(got[1][k], want[1][k], rtol=1e-4, atol=1e-6)
    d, v, r, add = compare(
        lambda: by_hand(params, X, Y), lambda: value_and_grad(params, X, Y), seconds=seconds
    )
    return Row("numpy:cpu", "value_and_grad digits-mlp (64x64)", d, v, r, add, "")


# --------------------------------------------------------------------------- report


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:.2f}"


def table(rows: list[Row]) -> str:
    header = ("backend", "call", "direct us", "vecx us", "vecx/direct", "added us", "goal", "met")
    lines = [header]
    for r in rows:
        met = {None: "-", True: "yes", False: "NO"}[r.met]
        lines.append((r.backend, r.call, _us(r.direct_s), _us(r.vecx_s), f"{r.ratio:.3f}",
                      f"{r.added_s * 1e6:+.2f}", r.goal or "(info)", met))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for n, line in enumerate(lines):
        out.append("| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |")
        if n == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def describe_machine(backends: list[Any]) -> str:
    m = machine_info()
    settings = runtime_settings()
    lines = [f"machine: {m['cpu']}, {m['cores']} logical CPUs, Python {m['python']}, "
             f"load average {os.getloadavg()[0]:.2f}"]
    if m.get("gpu"):
        lines.append(f"gpu: {m['gpu']} (driver {m['driver']})")
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS"):
        if var in os.environ:
            lines.append(f"{var}={os.environ[var]}")
    for pool in settings.get("blas") or []:
        lines.append(f"blas: {pool.get('internal_api')} {pool.get('version')} "
                     f"{pool.get('architecture')} threads={pool.get('num_threads')}")
    for be in backends:
        info = be.info()
        extra = f", threads={info['threads']}" if "threads" in info else ""
        lines.append(f"{be.spec}: {info['framework']} {info['version']} on {info['device_name']}"
                     f"{extra}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds; numbers are rough")
    parser.add_argument("--seconds", type=float, default=None,
                        help="timing budget per row and variant pair (default 3, quick 0.2)")
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS and torch threads (default 1, so a neighbour's job cannot "
                        "stall a 2-thread BLAS call; 0 leaves them as they are)")
    args = parser.parse_args(argv)
    seconds = args.seconds or (0.2 if args.quick else 3.0)
    if args.threads:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)

    built = []
    for st in vecx.list_backends():
        if st.name not in ("numpy", "torch", "jax", "cupy"):
            continue
        if not st.available:
            print(f"skip {st.spec}: {st.reason}")
            continue
        be = vecx.backend(st.spec)
        if be.name == "torch" and args.threads:
            be.xp.set_num_threads(args.threads)
        built.append(be)
    print(describe_machine(built))
    print(f"medians of >= {max(5, int(seconds / 0.01))} alternating block pairs per row, "
          f"blocks of ~5 ms\n")
    rows = []
    for be in built:
        rows.extend(bench_backend(be, seconds=seconds))
    rows.append(bench_autodiff(seconds=seconds))
    rows.append(bench_autodiff_mlp(seconds=seconds))
    print(table(rows))
    missed = [r for r in rows if r.met is False]
    if missed:
        print("\nmissed: " + "; ".join(f"{r.backend} {r.call}" for r in missed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
