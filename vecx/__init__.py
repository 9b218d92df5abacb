"""vecx: one algorithm, every array framework and device.

``vecx.backend("torch:cuda")`` gives a backend: a handful of primitives (ones, normal,
matmul, index, grad, sync, ...) on one framework and device. The trainer, the benchmark
suites and the CLI are written once against it. Importing vecx imports no framework.
"""

# The subpackage vecx/backends/ and the function vecx.backends() share a name. Importing
# the subpackage binds the attribute vecx.backends to the module, and a backend's
# constructor imports it (vecx.backends.numpy, ...), which would silently replace the
# function. Import the (framework-free) subpackage first, so the function below wins and
# later submodule imports bind only inside the subpackage.
import vecx.backends as _backends_package  # noqa: F401, I001
from vecx.data import data_iter, load_airfoil, synthetic_data
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
from vecx.train import PRESETS, History, fit, linreg, sgd, squared_loss, train

__version__ = "0.1.0"

__all__ = [
    "DTYPES",
    "PRESETS",
    "Backend",
    "BackendEntry",
    "BackendStatus",
    "BackendUnavailable",
    "History",
    "Measurement",
    "Timer",
    "TrainingDiverged",
    "UnsupportedDtype",
    "VecxError",
    "__version__",
    "backend",
    "backends",
    "data_iter",
    "fit",
    "linreg",
    "load_airfoil",
    "measure",
    "register",
    "sgd",
    "squared_loss",
    "synthetic_data",
    "train",
]
