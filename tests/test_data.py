"""Tests of vecx.data: the same bits and the same minibatch order on every backend."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import vecx
from vecx.data import AIRFOIL_ROWS, AIRFOIL_SHA256, airfoil_path, read_airfoil


@pytest.fixture(scope="module")
def reference() -> object:
    """The NumPy backend: every other backend must reproduce its data bit for bit."""
    return vecx.backend("numpy")


def host(be, x) -> np.ndarray:
    return np.asarray(be.to_numpy(x))


# --- synthetic_data ----------------------------------------------------------------------


def test_synthetic_data_is_bit_identical_on_every_backend(backend, reference) -> None:
    X, y = vecx.synthetic_data(backend, [2.0, -3.4], 4.2, 257, seed=3)
    assert tuple(X.shape) == (257, 2) and tuple(y.shape) == (257, 1)
    assert str(host(backend, X).dtype) == "float32" == str(host(backend, y).dtype)
    X0, y0 = vecx.synthetic_data(reference, [2.0, -3.4], 4.2, 257, seed=3)
    np.testing.assert_array_equal(host(backend, X), X0)
    np.testing.assert_array_equal(host(backend, y), y0)


def test_synthetic_data_follows_the_model(reference) -> None:
    X, y = vecx.synthetic_data(reference, [2.0, -3.4], 4.2, 20000, noise=0.01)
    assert abs(X.mean()) < 0.02 and abs(X.std() - 1) < 0.02
    design = np.c_[X.astype(np.float64), np.ones(len(X))]
    coef, *_ = np.linalg.lstsq(design, y.astype(np.float64), rcond=None)
    np.testing.assert_allclose(coef.ravel(), [2.0, -3.4, 4.2], atol=1e-3)
    residual = y.ravel() - design @ coef.ravel()
    assert 0.009 < residual.std() < 0.011


def test_synthetic_data_seed_changes_the_draw(reference) -> None:
    a = vecx.synthetic_data(reference, [1.0], 0.0, 50, seed=0)[0]
    b = vecx.synthetic_data(reference, [1.0], 0.0, 50, seed=1)[0]
    c = vecx.synthetic_data(reference, [1.0], 0.0, 50, seed=0)[0]
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, c)


def test_synthetic_data_native_rng(backend) -> None:
    X, y = vecx.synthetic_data(backend, [2.0, -3.4], 4.2, 4000, noise=0.01, native_rng=True)
    Xh, yh = host(backend, X).astype(np.float64), host(backend, y).astype(np.float64)
    assert Xh.shape == (4000, 2) and yh.shape == (4000, 1)
    assert abs(Xh.std() - 1) < 0.05
    residual = yh - (Xh @ np.array([[2.0], [-3.4]]) + 4.2)
    assert 0.008 < residual.std() < 0.012


@pytest.mark.parametrize(
    ("args", "word"),
    [
        (([], 1.0, 10), "w must"),
        (([[1.0, 2.0]], 1.0, 10), "w must"),
        (([1.0, float("nan")], 1.0, 10), "w must"),
        (([1.0], float("inf"), 10), "b must"),
        (([1.0], 1.0, 0), "n must"),
        (([1.0], 1.0, 2.5), "n must"),
    ],
)
def test_synthetic_data_rejects_bad_arguments(reference, args, word) -> None:
    with pytest.raises(ValueError, match=word):
        vecx.synthetic_data(reference, *args)


def test_synthetic_data_rejects_negative_noise_and_seed(reference) -> None:
    with pytest.raises(ValueError, match="noise"):
        vecx.synthetic_data(reference, [1.0], 0.0, 5, noise=-0.1)
    with pytest.raises(ValueError, match="seed"):
        vecx.synthetic_data(reference, [1.0], 0.0, 5, seed=-1)


# --- load_airfoil ------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [7, 64, 1 << 20])
def test_synthetic_data_in_chunks_is_one_float64_draw(reference, monkeypatch, chunk) -> None:
    """Drawn a chunk at a time (its float64 temporaries stay small), the numbers are those
    of one float64 draw of X then the noise, rounded once: as before the chunks."""
    import vecx.data

    monkeypatch.setattr(vecx.data, "SYNTHETIC_CHUNK_ELEMENTS", chunk)
    w = np.array([2.0, -3.4, 0.5])
    X, y = vecx.synthetic_data(reference, w, 4.2, 301, noise=0.1, seed=4)
    rng = vecx.data.host_rng(4, "data")
    X64 = rng.standard_normal((301, 3))
    y64 = X64 @ w.reshape(3, 1) + 4.2 + rng.normal(0.0, 0.1, (301, 1))
    np.testing.assert_array_equal(X, X64.astype(np.float32))
    np.testing.assert_array_equal(y, y64.astype(np.float32))


def test_the_finite_check_counts_every_bad_value_in_chunks(monkeypatch) -> None:
    from vecx.training import loop

    monkeypatch.setattr(loop, "FINITE_CHECK_ELEMENTS", 5)
    be = vecx.backend("numpy")
    X = np.ones((40, 3), np.float32)
    X[[0, 17, 39], [0, 1, 2]] = [np.nan, np.inf, -np.inf]
    with pytest.raises(ValueError, match="X contains 3 non-finite"):
        loop.check_finite(be, X, "X")
    loop.check_finite(be, np.ones((40, 3), np.float32), "X")  # and finite data passes


def test_digits_ship_with_their_citation() -> None:
    from vecx.data import DIGITS_SHA256, digits_path

    path = digits_path()
    assert path.is_file()
    readme = (path.parent / "README.md").read_text(encoding="utf-8")
    assert DIGITS_SHA256 in readme and "CC BY 4.0" in readme and "Alpaydin" in readme


def test_airfoil_ships_with_its_citation() -> None:
    path = airfoil_path()
    assert path.is_file()
    readme = (path.parent / "README.md").read_text(encoding="utf-8")
    assert AIRFOIL_SHA256 in readme and "CC BY 4.0" in readme and "Brooks" in readme


def test_load_airfoil_shapes_and_bits(backend, reference) -> None:
    X, y = vecx.load_airfoil(backend)
    assert tuple(X.shape) == (1500, 5) and tuple(y.shape) == (1500, 1)
    X0, y0 = vecx.load_airfoil(reference)
    np.testing.assert_array_equal(host(backend, X), X0)
    np.testing.assert_array_equal(host(backend, y), y0)


def test_airfoil_is_whitened_over_all_rows(reference) -> None:
    X, y = vecx.load_airfoil(reference, n=AIRFOIL_ROWS)
    data = np.c_[X, y].astype(np.float64)
    # whitened in float32 as d2l does: exact to float32 rounding (~1e-5 over 1503 rows)
    np.testing.assert_allclose(data.mean(axis=0), 0, atol=5e-5)
    np.testing.assert_allclose(data.std(axis=0), 1, atol=5e-5)
    # independent reference: parse in float64, whiten with population std (ddof=0)
    raw = np.genfromtxt(airfoil_path(), delimiter="\t")
    np.testing.assert_allclose(raw.mean(axis=0)[0], 2886.38057219, rtol=1e-9)  # README
    expected = (raw - raw.mean(axis=0)) / raw.std(axis=0)
    np.testing.assert_allclose(data, expected, atol=2e-5)
    # the first n rows of the same whitening, not a re-whitening of n rows
    X10, _ = vecx.load_airfoil(reference, n=10)
    np.testing.assert_array_equal(X10, X[:10])


@pytest.mark.parametrize("n", [0, AIRFOIL_ROWS + 1, 1.5])
def test_load_airfoil_rejects_bad_n(reference, n) -> None:
    with pytest.raises(ValueError, match="n must"):
        vecx.load_airfoil(reference, n=n)


def test_load_airfoil_damaged_copy_is_an_error(reference, tmp_path: Path) -> None:
    good = tmp_path / "good.dat"
    shutil.copy(airfoil_path(), good)
    assert vecx.load_airfoil(reference, path=good)[0].shape == (1500, 5)
    raw = good.read_bytes()
    flipped = tmp_path / "flipped.dat"
    flipped.write_bytes(raw[:100] + (b"9" if raw[100:101] != b"9" else b"8") + raw[101:])
    truncated = tmp_path / "truncated.dat"
    truncated.write_bytes(raw[: len(raw) // 2])
    for bad in (flipped, truncated):
        with pytest.raises(ValueError, match=r"damaged or truncated.*sha256"):
            vecx.load_airfoil(reference, path=bad)
    with pytest.raises(FileNotFoundError):
        vecx.load_airfoil(reference, path=tmp_path / "missing.dat")


def test_load_airfoil_checks_the_shipped_file(monkeypatch, tmp_path: Path) -> None:
    damaged = tmp_path / "airfoil_self_noise.dat"
    damaged.write_bytes(airfoil_path().read_bytes()[:-10])
    monkeypatch.setattr("vecx.data.airfoil_path", lambda: damaged)
    with pytest.raises(ValueError, match="damaged"):
        read_airfoil()


# --- data_iter ---------------------------------------------------------------------------


def rows(be, n: int, d: int = 2):
    """X whose first column is the row number, so a batch tells which rows it holds."""
    X = np.zeros((n, d), np.float32)
    X[:, 0] = np.arange(n)
    return be.asarray(X), be.asarray(np.arange(n, dtype=np.float32).reshape(n, 1))


def epochs_of(be, it, count: int) -> list[list[np.ndarray]]:
    out = []
    for _ in range(count):
        epoch = []
        for Xb, yb in it:
            ids = host(be, Xb)[:, 0].astype(np.int64)
            np.testing.assert_array_equal(ids, host(be, yb)[:, 0].astype(np.int64))
            epoch.append(ids)
        out.append(epoch)
    return out


def test_data_iter_covers_every_row_once_per_epoch(backend, reference) -> None:
    X, y = rows(backend, 23)
    it = vecx.data_iter(backend, 5, X, y, seed=7)
    assert len(it) == 5
    epochs = epochs_of(backend, it, 3)
    for epoch in epochs:
        assert [len(b) for b in epoch] == [5, 5, 5, 5, 3]
        np.testing.assert_array_equal(np.sort(np.concatenate(epoch)), np.arange(23))
    flat = [np.concatenate(e) for e in epochs]
    assert not np.array_equal(flat[0], flat[1]), "each epoch must be a fresh shuffle"
    # the same order on every backend
    X0, y0 = rows(reference, 23)
    expected = epochs_of(reference, vecx.data_iter(reference, 5, X0, y0, seed=7), 3)
    for got, want in zip(epochs, expected, strict=True):
        np.testing.assert_array_equal(np.concatenate(got), np.concatenate(want))


def test_data_iter_seed_decides_the_order(reference) -> None:
    X, y = rows(reference, 40)

    def order(seed: int) -> np.ndarray:
        return np.concatenate(epochs_of(reference, vecx.data_iter(reference, 8, X, y, seed), 1)[0])

    np.testing.assert_array_equal(order(1), order(1))
    assert not np.array_equal(order(1), order(2))


def test_data_iter_with_replacement(backend, reference) -> None:
    X, y = rows(backend, 100)
    it = vecx.data_iter(backend, 30, X, y, seed=1, replacement=True)
    epochs = epochs_of(backend, it, 5)
    for epoch in epochs:
        assert [len(b) for b in epoch] == [30, 30, 30, 10]
        ids = np.concatenate(epoch)
        assert ids.min() >= 0 and ids.max() < 100
    # drawn with replacement: some epoch repeats a row (P(no repeat) ~ 1e-43 per epoch)
    assert all(len(np.unique(np.concatenate(e))) < 100 for e in epochs)
    X0, y0 = rows(reference, 100)
    expected = epochs_of(reference, vecx.data_iter(reference, 30, X0, y0, 1, True), 5)
    for got, want in zip(epochs, expected, strict=True):
        np.testing.assert_array_equal(np.concatenate(got), np.concatenate(want))


def test_data_iter_native_rng(backend) -> None:
    X, y = rows(backend, 17)
    it = vecx.data_iter(backend, 4, X, y, native_rng=True)
    for epoch in epochs_of(backend, it, 2):
        np.testing.assert_array_equal(np.sort(np.concatenate(epoch)), np.arange(17))
    with pytest.raises(ValueError, match="native_rng"):
        vecx.data_iter(backend, 4, X, y, replacement=True, native_rng=True)


def test_data_iter_rejects_bad_arguments(reference) -> None:
    X, y = rows(reference, 10)
    for bad in (0, 11, 2.0, True):
        with pytest.raises(ValueError, match="batch_size"):
            vecx.data_iter(reference, bad, X, y)
    with pytest.raises(ValueError, match="same number of rows"):
        vecx.data_iter(reference, 2, X, y[:9])
    with pytest.raises(ValueError, match="seed"):
        vecx.data_iter(reference, 2, X, y, seed=-3)
