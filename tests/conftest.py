# Load vecx's pytest plugin (the `backend` fixture) also when vecx is not installed,
# e.g. with PYTHONPATH=. on the GPU machine. Installed, the entry point loads it under
# the same name, so it is registered once.
pytest_plugins = ["vecx.testing"]


# --------------------------------------------------------------------------- shared fixtures

import math  # noqa: E402

import pytest  # noqa: E402

from vecx.results import result  # noqa: E402

BACKENDS = (("numpy", 1.0), ("torch", 0.5), ("jax", 2.0))  # time scale against numpy
OOM = "RuntimeError: out of memory while allocating a tensor of 12345678 bytes on the device"


def _curve(t_end: float, loss_end: float, n: int = 12) -> dict:
    times = [t_end * (i + 1) / n for i in range(n)]
    losses = [loss_end + (1.0 - loss_end) * math.exp(-4 * i / n) for i in range(n)]
    return {"times": times, "losses": losses, "examples": [10 * (i + 1) for i in range(n)]}


def make_synthetic_doc(
    suites: tuple[str, ...] = ("vector-add", "matmul", "scaling", "train"),
) -> dict:
    """A results document as `vecx bench` writes it, with numbers chosen to check against."""
    recs = []
    for be, k in BACKENDS:
        dev = "cpu"
        if "vector-add" in suites:
            jax = be == "jax"
            params = {"n": 10000}
            extra = {"note": "JAX writes with c.at[i].set"} if jax else {}
            extra.update(measured_n=1000 if jax else 10000, extrapolated=jax)
            recs.append(
                result(
                    "vector-add",
                    "loop",
                    be,
                    dev,
                    params=params,
                    median_s=5e-3 * k,
                    iqr_s=1e-4 * k,
                    first_call_s=1e-2,
                    n_runs=5,
                    metric="time",
                    value=5e-3 * k,
                    unit="s",
                    **extra,
                )
            )
            recs.append(
                result(
                    "vector-add",
                    "vectorized",
                    be,
                    dev,
                    params={"n": 10000},
                    median_s=5e-6 * k,
                    iqr_s=1e-7,
                    first_call_s=2e-5,
                    n_runs=200,
                    metric="time",
                    value=5e-6 * k,
                    unit="s",
                )
            )
        if "matmul" in suites:
            for case, t in (("element", 2.0), ("column", 2e-2), ("full", 2e-4), ("block64", 5e-4)):
                if be == "torch" and case == "element":
                    recs.append(result("matmul", case, be, dev, params={"n": 256}, error=OOM))
                    continue
                recs.append(
                    result(
                        "matmul",
                        case,
                        be,
                        dev,
                        params={"n": 256},
                        median_s=t * k,
                        iqr_s=t * k * 0.02,
                        n_runs=5,
                        metric="gflops",
                        value=2 * 256**3 / (t * k) / 1e9,
                        unit="GFLOP/s",
                    )
                )
        if "scaling" in suites:
            for p in (10, 12, 14, 16):
                n = 2**p
                t = 12 * n / 20e9 / k + 2e-6
                gbs = 12 * n / t / 1e9
                recs.append(
                    result(
                        "scaling",
                        "vector-add",
                        be,
                        dev,
                        params={"n": n},
                        median_s=t,
                        iqr_s=t * 0.02,
                        metric="bandwidth",
                        value=gbs,
                        unit="GB/s",
                        pct_of_ceiling=100 * gbs / 40.0,
                    )
                )
                recs.append(
                    result(
                        "scaling",
                        "copy",
                        be,
                        dev,
                        params={"n": n},
                        median_s=t * 0.6,
                        iqr_s=t * 0.01,
                        metric="bandwidth",
                        value=8 * n / (t * 0.6) / 1e9,
                        unit="GB/s",
                        pct_of_ceiling=100 * 8 * n / (t * 0.6) / 1e9 / 40.0,
                    )
                )
            for n in (64, 128, 256):
                t = 2 * n**3 / (100e9 / k) + 1e-5
                gf = 2 * n**3 / t / 1e9
                recs.append(
                    result(
                        "scaling",
                        "matmul",
                        be,
                        dev,
                        params={"n": n},
                        median_s=t,
                        iqr_s=t * 0.02,
                        metric="gflops",
                        value=gf,
                        unit="GFLOP/s",
                        pct_of_ceiling=100 * gf / 200.0,
                    )
                )
        if "train" in suites:
            presets = (
                ("airfoil-gd", 1500, 0.01),
                ("airfoil-sgd", 1, 2.0),
                ("airfoil-mb100", 100, 0.05),
                ("airfoil-mb10", 10, 0.3),
                ("digits-mlp", 64, 0.02),
            )
            for preset, bs, epoch_s in presets:
                for impl in ("vecx", "native") if be != "numpy" else ("vecx",):
                    f = k * (0.5 if impl == "native" else 1.0)
                    agrees = not (be == "jax" and impl == "native" and preset == "airfoil-mb10")
                    loss = 0.2443 if agrees else 0.91
                    curve = _curve(2 * epoch_s * f, loss)
                    scores = {}
                    if preset.startswith("digits"):  # a classifier: accuracy too
                        curve["accuracies"] = [0.5 + 0.04 * i for i in range(12)]
                        scores["accuracy"] = 0.94
                    recs.append(
                        result(
                            "train",
                            preset,
                            be,
                            dev,
                            params={
                                "preset": preset,
                                "impl": impl,
                                "lr": 0.05,
                                "batch_size": bs,
                                "epochs": 2,
                            },
                            median_s=epoch_s * f,
                            iqr_s=epoch_s * f * 0.03,
                            n_runs=2,
                            metric="loss",
                            value=loss,
                            unit="",
                            curve=curve,
                            agrees=agrees,
                            **scores,
                        )
                    )
            # linreg with --modes: eager, jit, fused (NumPy cannot fuse: skipped)
            for mode, f, compile_s in (("eager", 1.0, None), ("jit", 0.5, 0.2),
                                       ("fused", 0.1, 0.4)):  # fmt: skip
                params = {"preset": "linreg", "impl": "vecx", "mode": mode, "lr": 0.03,
                          "batch_size": 10, "epochs": 3}  # fmt: skip
                if be == "numpy" and mode == "fused":
                    recs.append(result("train", "linreg", be, dev, params=params, mode=mode,
                                       skipped="numpy:cpu has nothing to fuse"))  # fmt: skip
                    continue
                recs.append(result(
                    "train", "linreg", be, dev, params=params, median_s=2e-3 * k * f,
                    iqr_s=1e-5, n_runs=2, metric="loss", value=5e-5, unit="",
                    curve=_curve(6e-3 * k * f, 5e-5), agrees=True, mode=mode,
                    compile_s=compile_s, compiles=None if mode == "eager" else 1,
                ))  # fmt: skip
    return {
        "schema": 1,
        "vecx_version": "0.1.0",
        "created": "2025-01-31T12:00:00+00:00",
        "machine": {
            "cpu": "Synthetic CPU 9000",
            "cores": 2,
            "gpu": None,
            "driver": None,
            "python": "3.11.9",
            "platform": "Linux-test",
            "memory_gb": 7.7,
        },
        "backends": {
            "numpy:cpu": {
                "framework": "numpy",
                "version": "2.1.0",
                "device_name": "Synthetic CPU 9000",
            },
            "torch:cpu": {
                "framework": "torch",
                "version": "2.13.0",
                "device_name": "Synthetic CPU 9000",
                "threads": 2,
            },
            "jax:cpu": {"framework": "jax", "version": "0.10.2", "device_name": "cpu"},
        },
        "settings": {
            "dtype": "float32",
            "precision": "float32",
            "quick": False,
            "env": {"OPENBLAS_CORETYPE": "Haswell"},
            "blas": [{"internal_api": "openblas", "version": "0.3.27", "num_threads": 2}],
        },
        "results": recs,
    }



@pytest.fixture
def synthetic_doc():
    """`make_synthetic_doc`: a results document of the built-in suites (tables, plots,
    report tests), called with the suites it should hold."""
    return make_synthetic_doc
