"""Data for the trainer: d2l's synthetic regression data, the airfoil set, and minibatches.

Why it is built this way:

* Every random draw (data, minibatch order, and in ``vecx.train`` the initial parameters)
  comes from a NumPy generator on the host and reaches the device with ``be.asarray`` or
  as host indices for ``be.index``. Every backend therefore trains on bit-identical float32
  data in the same order, so a difference between frameworks is a difference in the
  frameworks, not in the random numbers. ``native_rng=True`` uses the backend's own
  generator instead (reproducible per backend, not across backends).
* Each purpose draws from its own host stream, ``np.random.default_rng([seed, stream])``,
  so one seed gives data, order and initial parameters that share no random bits.
* Only the ``Backend`` protocol and the arrays' shared operators are used here; no
  framework is imported (see docs/architecture.md).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from vecx.protocol import Backend

__all__ = [
    "AIRFOIL_ROWS",
    "AIRFOIL_SHA256",
    "DIGITS_CLASSES",
    "DIGITS_ROWS",
    "DIGITS_SHA256",
    "DataIter",
    "batch_indices",
    "data_iter",
    "host_rng",
    "load_airfoil",
    "load_digits",
    "synthetic_data",
]

#: sha256 of the shipped airfoil file (vecx/datasets/README.md); checked at every load.
AIRFOIL_SHA256 = "74c75fd71783f1e6b71f8a622b993dc592897a97cd689c5090a07147a1b097b3"
AIRFOIL_FILE = "airfoil_self_noise.dat"
#: Rows in the airfoil file; whitening statistics are taken over all of them.
AIRFOIL_ROWS = 1503
AIRFOIL_COLUMNS = 6  # 5 features, then the target

#: sha256 of the shipped digits file (the .gz bytes; vecx/datasets/README.md).
DIGITS_SHA256 = "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22"
DIGITS_FILE = "digits.csv.gz"
DIGITS_ROWS = 1797
DIGITS_PIXELS = 64  # an 8x8 image, each pixel a count 0..16
DIGITS_CLASSES = 10

#: Elements drawn at a time by `synthetic_data` (8 MiB of float64), so its float64 draws
#: stay small whatever the size of the data.
SYNTHETIC_CHUNK_ELEMENTS = 1 << 20

#: Host random streams: one seed, independent draws per purpose.
_STREAMS = {"data": 0, "order": 1, "init": 2}


def host_rng(seed: int, stream: str) -> np.random.Generator:
    """The host generator for one purpose (``"data"``, ``"order"`` or ``"init"``)."""
    check_int("seed", seed, 0)
    return np.random.default_rng([seed, _STREAMS[stream]])


def check_backend(be: Any) -> None:
    """A ``TypeError`` unless ``be`` is a backend (a spec string is the usual slip)."""
    if isinstance(be, str):
        raise TypeError(f"pass a backend, vecx.backend({be!r}), not the string {be!r}")
    if not callable(getattr(be, "asarray", None)):
        raise TypeError(f"expected a vecx backend (vecx.backend(...)), got {type(be).__name__}")


def check_int(name: str, value: Any, low: int, high: int | None = None) -> int:
    """``value`` as an int in ``[low, high]``, else a ``ValueError`` naming ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return int(value)


def synthetic_data(
    be: Backend,
    w: Sequence[float],
    b: float,
    n: int,
    noise: float = 0.01,
    seed: int = 0,
    *,
    native_rng: bool = False,
) -> tuple[Any, Any]:
    """d2l's ``synthetic_data``: ``X ~ N(0, 1)`` of shape (n, len(w)), ``y = Xw + b + eps``.

    ``eps ~ N(0, noise)`` and ``y`` has shape (n, 1). The numbers are drawn on the host in
    float64 from ``seed`` and rounded once to the backend's dtype, so every backend gets the
    same bits. With ``native_rng=True`` they come from ``be.normal`` instead, i.e. from the
    backend's own generator (seeded when the backend was built; ``seed`` is then unused).
    """
    check_backend(be)
    w_host = np.asarray(w, dtype=np.float64)
    if w_host.ndim != 1 or w_host.size == 0 or not np.isfinite(w_host).all():
        raise ValueError(f"w must be a non-empty 1-D sequence of finite numbers, got {w!r}")
    if not _is_finite_number(b):
        raise ValueError(f"b must be a finite number, got {b!r}")
    n = check_int("n", n, 1)
    if not _is_finite_number(noise) or noise < 0:
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
    d = w_host.size
    if native_rng:
        X = be.normal(0.0, 1.0, (n, d))
        w_dev = be.asarray(w_host.reshape(d, 1))
        y = be.matmul(X, w_dev) + float(b) + be.normal(0.0, float(noise), (n, 1))
        return X, y
    dtype = np.dtype(be.dtype) if be.dtype in ("float32", "float64", "float16") else np.float32
    X, y = _synthetic_host(w_host, float(b), n, float(noise), seed, dtype)
    # Rounded once on the host, so the device copy is bit-identical on every backend.
    return be.asarray(X), be.asarray(y)


def _synthetic_host(
    w: np.ndarray, b: float, n: int, noise: float, seed: int, dtype: np.dtype
) -> tuple[np.ndarray, np.ndarray]:
    """The numbers of one float64 draw ``X = N(0, 1)`` (n, d) then ``eps = N(0, noise)``
    (n, 1), rounded to ``dtype``, drawn about ``SYNTHETIC_CHUNK_ELEMENTS`` at a time.

    A generator's stream does not depend on how it is cut into calls, so drawing in
    chunks gives the same numbers as one ``standard_normal((n, d))``; only the float64
    temporaries shrink from the whole data (2-3x the returned arrays) to one chunk. ``y``
    needs each row of ``X`` in float64 and the noise comes after all of ``X`` in the
    stream, so ``X``'s chunks are drawn a second time from a copy of the generator.
    """
    d = w.size
    step = max(1, SYNTHETIC_CHUNK_ELEMENTS // d)  # rows per chunk
    rng = host_rng(seed, "data")
    again = host_rng(seed, "data")  # the same stream, replayed for y
    X = np.empty((n, d), dtype)
    for start in range(0, n, step):
        rows = min(step, n - start)
        X[start : start + rows] = rng.standard_normal((rows, d))
    y = np.empty((n, 1), dtype)
    column = w.reshape(d, 1)
    for start in range(0, n, step):
        rows = min(step, n - start)
        chunk = again.standard_normal((rows, d))
        y[start : start + rows] = chunk @ column + b + rng.normal(0.0, noise, (rows, 1))
    return X, y


def _is_finite_number(x: Any) -> bool:
    return (
        not isinstance(x, (bool, np.bool_))
        and isinstance(x, (int, float, np.integer, np.floating))
        and math.isfinite(x)
    )


def verified_bytes(path: Path, sha256: str, name: str) -> bytes:
    """The bytes of a shipped data file, or a ``ValueError`` if they are not the ones
    vecx ships (a missing file is ``FileNotFoundError``, an ``OSError``)."""
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != sha256:
        raise ValueError(
            f"the {name} data at {path} is damaged or truncated: its sha256 is {digest}, "
            f"expected {sha256} ({len(raw)} bytes read); reinstall vecx or restore "
            "the file from the UCI repository (see vecx/datasets/README.md)"
        )
    return raw


def airfoil_path() -> Path:
    """Where the shipped airfoil file lives (package data of ``vecx.datasets``)."""
    return Path(str(resources.files("vecx.datasets") / AIRFOIL_FILE))


def read_airfoil(path: str | Path | None = None) -> np.ndarray:
    """The whitened airfoil table as float32, shape (1503, 6), after checking its sha256.

    Whitening is d2l's: float32 data minus its column mean, divided by its population
    standard deviation (ddof=0), over all rows, target column included.
    """
    path = Path(path) if path is not None else airfoil_path()
    raw = verified_bytes(path, AIRFOIL_SHA256, "airfoil")
    data = np.loadtxt(io.BytesIO(raw), dtype=np.float32, delimiter="\t")
    if data.shape != (AIRFOIL_ROWS, AIRFOIL_COLUMNS):  # cannot happen with the right hash
        raise ValueError(f"the airfoil data at {path} has shape {data.shape}, expected "
                         f"({AIRFOIL_ROWS}, {AIRFOIL_COLUMNS})")
    return (data - data.mean(axis=0)) / data.std(axis=0)


def load_airfoil(
    be: Backend, n: int = 1500, *, path: str | Path | None = None
) -> tuple[Any, Any]:
    """The NASA airfoil self-noise data as d2l's minibatch-SGD chapter uses it.

    Returns ``X`` of shape (n, 5) and ``y`` of shape (n, 1) on ``be``: every column
    whitened over all 1503 rows, then the first ``n`` rows kept. The file ships with vecx
    (citation in vecx/datasets/README.md: Brooks, Pope & Marcolini, UCI ML Repository,
    CC BY 4.0) and its sha256 is verified, so a damaged copy is an error, not a silently
    different result. ``path`` reads another copy of the same file.
    """
    check_backend(be)
    n = check_int("n", n, 1, AIRFOIL_ROWS)
    data = read_airfoil(path)[:n]
    return be.asarray(data[:, :-1]), be.asarray(data[:, -1:])


def digits_path() -> Path:
    """Where the shipped digits file lives (package data of ``vecx.datasets``)."""
    return Path(str(resources.files("vecx.datasets") / DIGITS_FILE))


def read_digits(path: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The handwritten digits as (pixel counts (1797, 64) float32, labels (1797,) int64),
    after checking the file's sha256."""
    path = Path(path) if path is not None else digits_path()
    raw = verified_bytes(path, DIGITS_SHA256, "digits")
    table = np.loadtxt(io.BytesIO(gzip.decompress(raw)), dtype=np.int64, delimiter=",")
    if table.shape != (DIGITS_ROWS, DIGITS_PIXELS + 1):  # cannot happen with the right hash
        raise ValueError(f"the digits data at {path} has shape {table.shape}")
    return table[:, :-1].astype(np.float32), table[:, -1]


def load_digits(
    be: Backend, n: int = DIGITS_ROWS, *, path: str | Path | None = None
) -> tuple[Any, Any]:
    """The UCI handwritten digits (1797 8x8 images, 10 classes) on ``be``.

    Returns ``X`` of shape (n, 64), the pixel counts scaled to [0, 1] (divided by 16),
    and ``Y`` of shape (n, 10), the labels one-hot, both in the backend's dtype: the first
    ``n`` rows. The file ships with vecx (citation in vecx/datasets/README.md: Alpaydin &
    Kaynak, UCI ML Repository, CC BY 4.0) and its sha256 is verified.
    """
    check_backend(be)
    n = check_int("n", n, 1, DIGITS_ROWS)
    pixels, labels = read_digits(path)
    onehot = np.eye(DIGITS_CLASSES, dtype=np.float32)[labels[:n]]
    return be.asarray(pixels[:n] / 16.0), be.asarray(onehot)


def batch_indices(
    n: int,
    batch_size: int,
    rng: np.random.Generator,
    *,
    replacement: bool = False,
) -> Iterator[np.ndarray]:
    """Host int64 row indices of one epoch's minibatches, drawn from ``rng``.

    Without replacement: one shuffle, every row once, the last batch possibly smaller.
    With replacement: the same batch sizes, each batch drawn uniformly with replacement
    (d2l's exercise), so an epoch still processes ``n`` examples.
    """
    if replacement:
        for start in range(0, n, batch_size):
            yield rng.integers(0, n, min(batch_size, n - start), dtype=np.int64)
        return
    order = rng.permutation(n).astype(np.int64, copy=False)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


class DataIter:
    """Minibatches ``(Xb, yb)``; each ``iter()`` is one epoch with a fresh shuffle.

    Like a seeded PyTorch ``DataLoader``: the epochs' orders follow from ``seed``, so
    ``for epoch in range(3): for Xb, yb in batches: ...`` is reproducible and the same
    on every backend.
    """

    def __init__(
        self,
        be: Backend,
        batch_size: int,
        X: Any,
        y: Any,
        seed: int = 0,
        replacement: bool = False,
        native_rng: bool = False,
    ) -> None:
        n = rows_of(X, "X")
        if rows_of(y, "y") != n:
            raise ValueError(f"X and y must have the same number of rows: X has {n}, "
                             f"y has {rows_of(y, 'y')}")
        self.batch_size = check_int("batch_size", batch_size, 1, n)
        if native_rng and replacement:
            raise ValueError(
                "native_rng=True cannot sample with replacement: the Backend protocol has "
                "a permutation but no integer sampler; use the host generator (the default)"
            )
        self.be, self.X, self.y, self.n = be, X, y, n
        self.replacement, self.native_rng = bool(replacement), bool(native_rng)
        self._rng = host_rng(seed, "order")

    def __len__(self) -> int:
        """Minibatches per epoch."""
        return -(-self.n // self.batch_size)

    def indices(self) -> Iterator[np.ndarray]:
        """The next epoch's host index arrays (advances the generator by one epoch)."""
        if self.native_rng:  # one device-to-host copy per epoch, none per batch
            order = np.asarray(self.be.to_numpy(self.be.permutation(self.n)), dtype=np.int64)
            return (order[i : i + self.batch_size] for i in range(0, self.n, self.batch_size))
        return batch_indices(self.n, self.batch_size, self._rng, replacement=self.replacement)

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        be, X, y = self.be, self.X, self.y
        for idx in self.indices():
            yield be.index(X, idx), be.index(y, idx)


def data_iter(
    be: Backend,
    batch_size: int,
    X: Any,
    y: Any,
    seed: int = 0,
    replacement: bool = False,
    *,
    native_rng: bool = False,
) -> DataIter:
    """Minibatches of ``(X, y)`` gathered with ``be.index``: see :class:`DataIter`.

    The order comes from the host generator seeded by ``seed`` (the same on every
    backend); ``native_rng=True`` shuffles with ``be.permutation`` instead.
    """
    return DataIter(be, batch_size, X, y, seed, replacement, native_rng)


def rows_of(x: Any, name: str) -> int:
    """Number of rows of a 1-D or 2-D array, or a ``ValueError`` naming the argument."""
    shape = getattr(x, "shape", None)
    if shape is None or len(shape) not in (1, 2):
        raise ValueError(f"{name} must be a 1-D or 2-D array, got shape {shape}")
    return int(shape[0])
