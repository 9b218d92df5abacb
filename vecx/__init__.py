"""vecx: one algorithm, every array framework and device.

``vecx.backend("torch:cuda")`` gives a backend: a handful of primitives (ones, normal,
matmul, index, the portable math ops, grad, jit, sync, ...) on one framework and device.
The trainer (``vecx.fit``, ``vecx.train``), the benchmark suites and the CLI are written
once against it. Importing vecx imports no framework.
"""

from vecx.data import data_iter, load_airfoil, load_digits, synthetic_data
from vecx.protocol import (
    DTYPES,
    MODES,
    Backend,
    BackendUnavailable,
    Capabilities,
    ModeUnsupported,
    Recompiled,
    TracedRandomness,
    TrainingDiverged,
    UnsupportedDtype,
    VecxError,
    WorkerFailed,
)
from vecx.registry import BackendEntry, BackendStatus, backend, list_backends, register
from vecx.suites.workload import Workload, workload
from vecx.timing import Measurement, Timer, measure
from vecx.training import (
    PRESETS,
    TASKS,
    Checkpoint,
    History,
    LossScale,
    Task,
    fit,
    linreg,
    momentum,
    sgd,
    squared_loss,
    train,
)

__version__ = "0.1.0"

__all__ = [
    "DTYPES",
    "MODES",
    "PRESETS",
    "TASKS",
    "Backend",
    "BackendEntry",
    "BackendStatus",
    "BackendUnavailable",
    "Capabilities",
    "Checkpoint",
    "History",
    "LossScale",
    "Measurement",
    "ModeUnsupported",
    "Recompiled",
    "Task",
    "Timer",
    "TracedRandomness",
    "TrainingDiverged",
    "UnsupportedDtype",
    "VecxError",
    "WorkerFailed",
    "Workload",
    "__version__",
    "backend",
    "data_iter",
    "fit",
    "linreg",
    "list_backends",
    "load_airfoil",
    "load_digits",
    "measure",
    "momentum",
    "register",
    "sgd",
    "squared_loss",
    "synthetic_data",
    "train",
    "workload",
]
