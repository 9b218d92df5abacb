"""This checkout against an earlier revision of vecx, side by side in one process.

Extracts ``vecx/`` of a git revision (``git archive``) into a temporary folder under the
name ``vecx_then``, imports both, and times the same calls interleaved, block against
block, so that a shared machine's drift falls on both alike: the NumPy ``value_and_grad``
of d2l's linear-regression loss (batch 10), and ``vecx.fit`` on the ``linreg`` preset's data
(300 steps) on every available CPU backend. Prints the ratio now / then per row (below 1:
faster now) with the medians; BLAS and torch threads are set to 1.

    PYTHONPATH=. python bench/versus_revision.py ff3fe5f     # the revision before "any model"
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def extract(revision: str, folder: Path) -> None:
    """``vecx/`` at ``revision`` as the package ``vecx_then`` in ``folder``."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", revision, "vecx"],
                             capture_output=True, check=True).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    (folder / "vecx").rename(folder / "vecx_then")
    for path in (folder / "vecx_then").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        text = re.sub(r"\bvecx\.", "vecx_then.", text)
        text = re.sub(r"^(\s*)import vecx\b", r"\1import vecx_then", text, flags=re.M)
        text = re.sub(r"^(\s*)from vecx import", r"\1from vecx_then import", text, flags=re.M)
        path.write_text(text, encoding="utf-8")


def interleaved(now: Callable[[], Any], then: Callable[[], Any], blocks: int,
                calls: int) -> tuple[float, float, float]:  # fmt: skip
    """(median seconds per call now, then, median of the per-block-pair ratios)."""
    now(), then()
    a, b, ratios = [], [], []
    for i in range(blocks):
        pair = ((now, a), (then, b)) if i % 2 else ((then, b), (now, a))
        for fn, out in pair:
            t0 = time.perf_counter()
            for _ in range(calls):
                fn()
            out.append((time.perf_counter() - t0) / calls)
        ratios.append(a[-1] / b[-1])
    return statistics.median(a), statistics.median(b), statistics.median(ratios)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revision", help="a git revision of this repository (e.g. ff3fe5f)")
    parser.add_argument("--blocks", type=int, default=60, help="block pairs per row")
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    with tempfile.TemporaryDirectory() as tmp:
        extract(args.revision, Path(tmp))
        sys.path.insert(0, tmp)
        import vecx_then  # type: ignore[import-not-found]

        import vecx

        rows = []
        rng = np.random.default_rng(0)
        X = rng.standard_normal((10, 2)).astype(np.float32)
        y = rng.standard_normal((10, 1)).astype(np.float32)
        params = {"w": rng.standard_normal((2, 1)).astype(np.float32),
                  "b": np.zeros(1, np.float32)}  # fmt: skip

        def loss(p: Any, X: Any, y: Any) -> Any:
            return ((X @ p["w"] + p["b"] - y) ** 2 / 2).mean()

        vg_now = vecx.backend("numpy").value_and_grad(loss)
        vg_then = vecx_then.backend("numpy").value_and_grad(loss)
        rows.append(("numpy:cpu", "value_and_grad linreg (10x2)",
                     *interleaved(lambda: vg_now(params, X, y), lambda: vg_then(params, X, y),
                                  args.blocks, 300)))  # fmt: skip
        kw = {"lr": 0.03, "batch_size": 10, "epochs": 3, "log_every": 1000}
        for spec in ("numpy", "torch:cpu", "jax:cpu"):
            try:
                be_now, be_then = vecx.backend(spec), vecx_then.backend(spec)
            except vecx.VecxError:
                continue
            if be_now.name == "torch":
                be_now.xp.set_num_threads(1)
            data_now = vecx.synthetic_data(be_now, [2.0, -3.4], 4.2, 1000)
            data_then = vecx_then.synthetic_data(be_then, [2.0, -3.4], 4.2, 1000)
            rows.append((be_now.spec, "fit linreg (300 steps)", *interleaved(
                lambda be=be_now, d=data_now: vecx.fit(be, *d, **kw),
                lambda be=be_then, d=data_then: vecx_then.fit(be, *d, **kw),
                max(10, args.blocks // 3), 1)))  # fmt: skip
    print(f"# vecx now ({_head()}) against {args.revision}, interleaved blocks, threads 1; "
          f"load {os.getloadavg()[0]:.2f}")
    print("| backend | call | now (us) | then (us) | now / then |")
    print("|---|---|---|---|---|")
    for spec, call, a, b, ratio in rows:
        print(f"| {spec} | {call} | {a * 1e6:.1f} | {b * 1e6:.1f} | {ratio:.3f} |")
    return 0


def _head() -> str:
    out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True)  # fmt: skip
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "vecx"],
                           capture_output=True, text=True).stdout.strip()  # fmt: skip
    return out.stdout.strip() + ("+changes" if dirty else "")


if __name__ == "__main__":
    sys.exit(main())
