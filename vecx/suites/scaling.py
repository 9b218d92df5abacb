"""``scaling``: achieved rates against problem size, beside the machine's own ceilings.

Cases (one record per size ``n``):

* ``vector-add``: ``a + b`` for n = 2^10 ... 2^24 (2^26 on a GPU), in GB/s counting
  3 arrays x ``itemsize`` bytes per element (read a, read b, write the result).
* ``copy``: the bandwidth ceiling, at the same sizes, counting 2 arrays x ``itemsize``
  (one read, one write). The ``Backend`` protocol has no copy primitive and
  ``be.asarray(x)`` returns ``x`` itself on every built-in backend, so the copy is
  measured as ``y = -x``: a streaming kernel with exactly a copy's memory traffic (read
  each element once, write it once) that no framework can elide, since it changes every
  value. A true memcpy can be slightly faster on CPUs (non-temporal stores), so vector-add
  may reach a little over 100% of this ceiling.
* ``matmul``: ``be.matmul(B, C)`` for n = 64 ... 2048 (8192 on a GPU), in GFLOP/s = 2n^3/s.

Like users' code, ``a + b`` and ``-x`` allocate their result each call; both cases pay
it alike, so the percentage stays fair. ``pct_of_ceiling`` is left empty here and filled
by the runner once every backend has run (``vecx.runner.add_ceilings``): bandwidth
against the best ``copy`` rate measured on that device, compute against the best
``matmul`` rate any backend reached on that device.

Correctness: each case checks the output of its last timed call (``Measurement.output``),
never a recomputation. Vector-add and copy are checked elementwise against float64 host
results. A matmul of order n is checked three ways, each O(n^2) on the host rather than
a float64 O(n^3) product:

* ``CHECK_ROWS`` rows of ``A``, chosen at random, against the same rows of ``B C``
  computed in float64, with the probabilistic bound ``8 sqrt(n) u |B||C|``
  (:func:`vecx.suites.matmul_bound`; ``u`` = 2^-24, or 2^-11 with ``--precision tf32``):
  tight enough to catch a result 1% off or computed from bf16- or TF32-rounded inputs;
* Freivalds' test, ``A v`` against ``B (C v)`` for a random ``v``, bound
  ``8 sqrt(n) u |B| (|C| |v|)``: loose, but it sees every row, so a wrong block or a
  stale buffer outside the sampled rows is caught;
* in float32 precision, :func:`vecx.suites.tf32_sentinel` at ``min(n, 1024)``, an exact
  test that float32 products are not computed from TF32 inputs; the sampled rows alone
  stop seeing TF32 beyond n = 2048 (its error grows like sqrt(n), the bound like n^1.5).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from vecx.suites import (
    CHECK_ROWS,
    U_FLOAT32,
    Case,
    check_within,
    device_kind,
    failed,
    log2_sizes,
    matmul_bound,
    tf32_sentinel,
    timed,
    timing_options,
    unit_roundoff,
)
from vecx.timing import measure

NAME = "scaling"
CASES = ("vector-add", "copy", "matmul")
ITEMSIZE = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2}

#: Sizes by (device kind, quick): vector lengths and matmul orders.
VECTOR_SIZES = {
    ("cpu", False): log2_sizes(10, 24),
    ("cuda", False): log2_sizes(10, 26),
    ("cpu", True): log2_sizes(10, 20, 2),
    ("cuda", True): log2_sizes(10, 24, 2),
}
MATMUL_SIZES = {
    ("cpu", False): log2_sizes(6, 11),
    ("cuda", False): log2_sizes(6, 13),
    ("cpu", True): log2_sizes(6, 9),
    ("cuda", True): log2_sizes(6, 11),
}


def plan(
    device: str,
    *,
    quick: bool = False,
    vector_sizes: list[int] | None = None,
    matmul_sizes: list[int] | None = None,
    **_: Any,
) -> list[tuple]:
    """Sizes depend on the device (bigger on a GPU) and on ``quick`` (far smaller)."""
    kind = device_kind(device)
    vec = vector_sizes if vector_sizes is not None else VECTOR_SIZES[kind, quick]
    mm = matmul_sizes if matmul_sizes is not None else MATMUL_SIZES[kind, quick]
    return (
        [("vector-add", {"n": n}) for n in vec]
        + [("copy", {"n": n}) for n in vec]
        + [("matmul", {"n": n}) for n in mm]
    )


#: Order of the TF32 sentinel product (at most n): exact, and cheap beside an n^3 matmul.
SENTINEL_SIZE = 1024

COPY_NOTE = "copy measured as y = -x (one read + one write per element; no copy primitive)"


def cases(
    be: Any,
    *,
    quick: bool = False,
    vector_sizes: list[int] | None = None,
    matmul_sizes: list[int] | None = None,
    timing: dict[str, Any] | None = None,
    seed: int = 0,
) -> list[Case]:
    """One case per (kind, n) on ``be``; inputs are made inside each case and freed after."""
    opts = timing if timing is not None else timing_options(quick)
    itemsize = ITEMSIZE.get(be.dtype, 4)
    precision = str(getattr(be, "precision", "float32"))
    u = unit_roundoff(be.dtype, precision)

    def run_vector_add(n: int) -> dict[str, Any]:
        import numpy as np

        a = be.normal(0.0, 1.0, n)
        b = be.normal(0.0, 1.0, n)
        meas = measure(lambda: a + b, be, label=f"vector-add n={n}", **opts)
        ref = np.asarray(be.to_numpy(a), np.float64) + np.asarray(be.to_numpy(b), np.float64)
        got = be.to_numpy(meas.output)  # the last timed call's result, not a recomputation
        problem = check_within(got, ref, 1.01 * U_FLOAT32 * np.abs(ref), "a + b")
        if problem:
            return failed(NAME, "vector-add", be, {"n": n}, problem)
        return timed(
            NAME, "vector-add", be, meas, params={"n": n}, metric="bandwidth",
            value=3 * itemsize * n / meas.median / 1e9, unit="GB/s",
        )  # fmt: skip

    def run_copy(n: int) -> dict[str, Any]:
        import numpy as np

        x = be.normal(0.0, 1.0, n)
        meas = measure(lambda: -x, be, label=f"copy n={n}", **opts)
        problem = check_within(
            be.to_numpy(meas.output), -np.asarray(be.to_numpy(x), np.float64), 0.0, "-x"
        )
        if problem:
            return failed(NAME, "copy", be, {"n": n}, problem)
        return timed(
            NAME, "copy", be, meas, params={"n": n}, metric="bandwidth",
            value=2 * itemsize * n / meas.median / 1e9, unit="GB/s", note=COPY_NOTE,
        )  # fmt: skip

    def run_matmul(n: int) -> dict[str, Any]:
        B = be.normal(0.0, 1.0, (n, n))
        C = be.normal(0.0, 1.0, (n, n))
        meas = measure(lambda: be.matmul(B, C), be, label=f"matmul n={n}", **opts)
        problem = check_matmul(be.to_numpy(meas.output), be.to_numpy(B), be.to_numpy(C), u)
        if problem is None and precision == "float32" and be.dtype == "float32":
            problem = tf32_sentinel(be, min(n, SENTINEL_SIZE))
        if problem:
            return failed(NAME, "matmul", be, {"n": n}, problem)
        return timed(
            NAME, "matmul", be, meas, params={"n": n}, metric="gflops",
            value=2.0 * n**3 / meas.median / 1e9, unit="GFLOP/s",
        )  # fmt: skip

    runners = {"vector-add": run_vector_add, "copy": run_copy, "matmul": run_matmul}
    out = []
    for case, params in plan(
        be.spec, quick=quick, vector_sizes=vector_sizes, matmul_sizes=matmul_sizes
    ):
        out.append(Case(NAME, case, params, lambda c=case, n=params["n"]: runners[c](n)))
    return out


def check_matmul(A: Any, B: Any, C: Any, u: float = U_FLOAT32) -> str | None:
    """None if ``A`` is ``B @ C`` (n x n, NumPy arrays) to the accuracy of unit roundoff
    ``u``, else a one-line reason: ``CHECK_ROWS`` sampled rows against float64 with
    :func:`vecx.suites.matmul_bound`, then Freivalds' test (see the module docstring)."""
    import numpy as np

    A = np.asarray(A)
    n = int(np.shape(B)[0])
    if A.shape != (n, n):
        return f"wrong result: matmul has shape {A.shape}, expected {(n, n)}"
    rng = np.random.default_rng(n)
    B64, C64 = np.asarray(B, np.float64), np.asarray(C, np.float64)
    rows = np.sort(rng.choice(n, size=min(CHECK_ROWS, n), replace=False))
    abs_c = np.abs(C64)
    problem = check_within(
        A[rows], B64[rows] @ C64, matmul_bound(np.abs(B64[rows]), abs_c, n, u),
        f"matmul (rows {', '.join(map(str, rows))} of A)",
    )  # fmt: skip
    if problem:
        return problem
    v = rng.standard_normal(n)
    bound = matmul_bound(np.abs(B64), abs_c @ np.abs(v), n, u)
    return check_within(A.astype(np.float64) @ v, B64 @ (C64 @ v), bound, "matmul (Freivalds A v)")


def run_scaling(be: Any, *, quick: bool = False, **sizes: Any) -> Iterator[dict[str, Any]]:
    """Records of every size on ``be``; ``pct_of_ceiling`` is filled later by the runner."""
    from vecx.suites import run_suite

    yield from run_suite(NAME, be, quick=quick, **sizes)
