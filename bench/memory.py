"""Peak memory of vecx.fit and vecx.synthetic_data, against what the job itself needs.

Two measurements, each in a fresh interpreter (so one cannot inherit the other's freed
memory), reading the peak of Python's ``tracemalloc``, which NumPy reports every array
allocation to (a figure of NumPy memory only: torch and JAX allocate outside it):

* ``fit``: ``vecx.fit`` on a linear regression with 10^8 float32 elements of X (400 MB;
  ``--elements`` to change) against the same run written by hand (the gradient written
  out, the epoch's shuffle, one whole-data loss per epoch, as d2l does), both on data
  made before the measurement starts. Goal: vecx's peak within 5% of the hand loop's.
* ``synthetic_data``: the peak while making X and y, against the bytes of the X and y it
  returns. Goal: close to 1 (the float64 draw is made one chunk at a time).

    PYTHONPATH=. python bench/memory.py [--elements 100000000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FEATURES = 100
BATCH = 1000

CHILD = r"""
import json, sys, tracemalloc
import numpy as np
sys.path.insert(0, {repo!r})
import vecx
from vecx.data import host_rng

kind, elements, features, batch = {kind!r}, {elements}, {features}, {batch}
n = elements // features
be = vecx.backend("numpy")
w_true = list(np.linspace(-1.0, 1.0, features))
tracemalloc.start()
if kind == "synthetic":
    X, y = vecx.synthetic_data(be, w_true, 0.5, n, seed=1)
    peak = tracemalloc.get_traced_memory()[1]
    print(json.dumps({{"peak": peak, "returned": X.nbytes + y.nbytes}}))
    raise SystemExit
rng = np.random.default_rng(0)  # data made outside the measured region
X = rng.standard_normal((n, features), dtype=np.float32)
y = (X @ np.asarray(w_true, np.float32).reshape(-1, 1) + np.float32(0.5)).astype(np.float32)
base = tracemalloc.get_traced_memory()[0]
tracemalloc.reset_peak()
if kind == "fit":
    h = vecx.fit(be, X, y, lr=0.1, batch_size=batch, epochs=1, log_every=n)
    result = h.params["w"]
else:  # the same run by hand: d2l's loop with the gradient written out
    init = host_rng(0, "init").normal(0.0, 0.01, (features, 1)).astype(np.float32)
    w, b = init, np.zeros(1, np.float32)
    order = host_rng(0, "order").permutation(n).astype(np.int64)
    for i in range(0, n, batch):
        idx = order[i : i + batch]
        Xb, yb = X[idx], y[idx]
        err = Xb @ w + b - yb
        w = w - 0.1 * (Xb.T @ err) / len(idx)
        b = b - 0.1 * err.mean(axis=0)
    err = X @ w + b - y
    float((err ** 2 / 2).mean())
    result = w
peak = tracemalloc.get_traced_memory()[1]
print(json.dumps({{"peak": peak, "base": base, "data": X.nbytes + y.nbytes,
                  "w": np.asarray(result).ravel().tolist()}}))
"""


def measure(kind: str, elements: int) -> dict:
    code = CHILD.format(repo=str(REPO), kind=kind, elements=elements, features=FEATURES,
                        batch=BATCH)  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--elements", type=int, default=10**8,
                        help="elements of X (float32, %(default)s = 400 MB)")
    args = parser.parse_args(argv)
    mib = 2**20
    fit, hand = measure("fit", args.elements), measure("hand", args.elements)
    synthetic = measure("synthetic", args.elements)
    same = all(abs(a - b) <= 1e-3 * max(1.0, abs(b)) for a, b in zip(fit["w"], hand["w"],
                                                                      strict=True))  # fmt: skip
    ratio = fit["peak"] / hand["peak"]
    print(f"# peak NumPy memory (tracemalloc), X of {args.elements:,} float32 elements "
          f"({FEATURES} features), batch {BATCH}, one epoch; load {os.getloadavg()[0]:.2f}")
    print("| measurement | peak (MiB) | reference (MiB) | ratio | goal |")
    print("|---|---|---|---|---|")
    print(f"| vecx.fit vs hand-written loop (data {fit['data'] / mib:.0f} MiB) | "
          f"{fit['peak'] / mib:.1f} | {hand['peak'] / mib:.1f} | {ratio:.3f} | <= 1.05 |")
    sratio = synthetic["peak"] / synthetic["returned"]
    print(f"| vecx.synthetic_data vs the X and y it returns | {synthetic['peak'] / mib:.1f} | "
          f"{synthetic['returned'] / mib:.1f} | {sratio:.3f} | close to 1 |")
    print(f"same final parameters: {'yes' if same else 'NO'}")
    return 0 if ratio <= 1.05 and same else 1


if __name__ == "__main__":
    sys.exit(main())
