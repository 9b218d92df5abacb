"""Machine and runtime facts that change benchmark numbers: CPU, memory, GPUs, BLAS pools.

Backends (for ``info()``) and result files (for their header) both need these, so they
live here, below both: this module imports nothing of vecx's and no array framework.
Every reader is best effort and never raises.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from typing import Any

__all__ = [
    "ENV_VARS",
    "cpu_model",
    "cpu_seconds",
    "cpu_use_of_others",
    "cuda_driver_present",
    "idle_cpus",
    "load_averages",
    "machine_info",
    "others_between",
    "runtime_settings",
    "usable_cpus",
]

#: Environment variables that change benchmark numbers when set.
ENV_VARS: tuple[str, ...] = (
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "XLA_FLAGS",
    "XLA_PYTHON_CLIENT_PREALLOCATE",
    "CUDA_VISIBLE_DEVICES",
)


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo, else platform), for results and info()."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, val = line.partition(":")
                if key.strip() in ("model name", "Model", "cpu model") and val.strip():
                    return val.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _memory_gb() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) * 1024 / 2**30, 1)
    except (OSError, ValueError, IndexError):
        pass
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (AttributeError, ValueError, OSError):
        return None


def _nvidia_gpu() -> tuple[str | None, str | None]:
    """(gpu names, driver) from ``nvidia-smi``; (None, None) if absent, slow or failing."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None, None
    cmd = [exe, "--query-gpu=name,driver_version", "--format=csv,noheader"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None, None
    rows = [[c.strip() for c in line.split(",")] for line in out.splitlines() if line.strip()]
    rows = [r for r in rows if len(r) >= 2 and r[0]]
    if not rows:
        return None, None
    names = [r[0] for r in rows]
    unique = list(dict.fromkeys(names))
    gpu = ", ".join(f"{names.count(n)} x {n}" if names.count(n) > 1 else n for n in unique)
    return gpu, rows[0][1] or None


def machine_info() -> dict[str, Any]:
    """The hardware and OS a run happened on; every field is best effort and never raises.

    ``memory_gb`` is in GiB (2**30 bytes); ``gpu``/``driver`` come from ``nvidia-smi`` and
    are None without one; ``cores`` is ``os.cpu_count()`` (0 if unknown).
    """
    gpu, driver = _nvidia_gpu()
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count() or 0,
        "gpu": gpu,
        "driver": driver,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "memory_gb": _memory_gb(),
    }


def runtime_settings() -> dict[str, Any]:
    """Process settings that change the numbers: set env vars (`ENV_VARS`) and BLAS pools.

    ``"blas"`` lists the BLAS libraries loaded *in the calling process* (threadpoolctl sees
    only those), so call this inside each backend's worker process after its framework
    has loaded to see e.g. torch's own OpenBLAS/MKL. None if threadpoolctl is missing.
    """
    env = {name: os.environ[name] for name in ENV_VARS if name in os.environ}
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return {"env": env, "blas": None}
    blas = []
    for pool in threadpool_info():
        if pool.get("user_api") != "blas":
            continue
        summary = {k: pool.get(k) for k in ("internal_api", "prefix", "version", "num_threads")}
        summary["architecture"] = pool.get("architecture") or pool.get("corename")
        if pool.get("threading_layer"):
            summary["threading_layer"] = pool["threading_layer"]
        blas.append(summary)
    return {"env": env, "blas": blas}


def load_averages() -> list[float] | None:
    """1, 5 and 15-minute load averages: other work on the machine skews every number."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def cuda_driver_present() -> bool:
    """Whether this machine has an NVIDIA driver at all, asked without any framework and
    without creating a CUDA context (so no GPU memory is taken): its kernel module's
    ``/proc`` entry, a device node, or the driver library loadable (``dlopen`` only)."""
    import ctypes

    if os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidia0"):
        return True
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            ctypes.CDLL(name)
        except OSError:
            continue
        return True
    return False


def _busy_and_total_ticks() -> tuple[int, int] | None:
    """(busy, total) clock ticks of all CPUs so far, from the first line of /proc/stat."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    if len(fields) < 8:
        return None
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def cpu_seconds() -> tuple[float, float] | None:
    """(CPU seconds all processes have used, CPU seconds this one has), now: two readings
    give the CPUs other processes kept busy in between (`others_between`)."""
    ticks = _busy_and_total_ticks()
    if ticks is None:
        return None
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    own = os.times()
    return ticks[0] / tick, own.user + own.system


def others_between(before: tuple[float, float] | None, after: tuple[float, float] | None,
                   wall_s: float) -> float | None:  # fmt: skip
    """CPUs' worth of work other processes did between two `cpu_seconds` readings."""
    if before is None or after is None or wall_s <= 0:
        return None
    busy, own = after[0] - before[0], after[1] - before[1]
    return round(max(0.0, busy - own) / wall_s, 2)


def cpu_use_of_others(interval: float = 0.2) -> float | None:
    """How many CPUs' worth other processes kept busy over the next ``interval`` seconds
    (all CPUs' busy time from /proc/stat, less this process's own): the interference the
    1-minute load average reports a minute late, if at all. None where /proc is absent."""
    import time

    before, t0 = cpu_seconds(), time.monotonic()
    if before is None:
        return None
    time.sleep(interval)
    return others_between(before, cpu_seconds(), time.monotonic() - t0)


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask), else all of the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def idle_cpus(others: float | None, cores: int | None = None) -> int:
    """CPUs left to a process when others keep ``others`` CPUs busy: at least 1, at most
    the CPUs this process may run on. A quarter of a CPU in use counts as free (a shell,
    a logger), more than that as taken: a BLAS thread sharing a CPU with a busy process
    spin-waits through whole scheduler ticks, so `vecx bench --threads auto` gives each
    backend this many threads (fewer threads than CPUs only loses speed)."""
    if cores is None:
        cores = usable_cpus()
    if others is None:
        return max(1, cores)
    import math

    return max(1, min(cores, math.floor(cores - others + 0.25)))
