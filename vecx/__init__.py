"""vecx: one algorithm, every array framework and device.

``vecx.backend("torch:cuda")`` gives a backend: a handful of primitives (ones, normal,
matmul, index, grad, sync, ...) on one framework and device. The trainer, the benchmark
suites and the CLI are written once against it. Importing vecx imports no framework.
"""

from vecx.protocol import (
    DTYPES,
    Backend,
    BackendUnavailable,
    TrainingDiverged,
    UnsupportedDtype,
    VecxError,
)
from vecx.registry import BackendEntry, BackendStatus, backend, backends, register
from vecx.timing import Measurement, Timer, measure

__version__ = "0.1.0"

__all__ = [
    "DTYPES",
    "Backend",
    "BackendEntry",
    "BackendStatus",
    "BackendUnavailable",
    "Measurement",
    "Timer",
    "TrainingDiverged",
    "UnsupportedDtype",
    "VecxError",
    "__version__",
    "backend",
    "backends",
    "measure",
    "register",
]
