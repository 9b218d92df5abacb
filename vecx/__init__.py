"""vecx: one algorithm, every array framework and device."""

from vecx.protocol import (
    DTYPES,
    Backend,
    BackendUnavailable,
    TrainingDiverged,
    UnsupportedDtype,
    VecxError,
)

__version__ = "0.1.0"

__all__ = [
    "DTYPES",
    "Backend",
    "BackendUnavailable",
    "TrainingDiverged",
    "UnsupportedDtype",
    "VecxError",
    "__version__",
]
