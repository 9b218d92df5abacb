"""JAX on the CPU or a CUDA device; ``jax.value_and_grad`` and ``jax.jit`` natively.

JAX differs from the others in three ways this module hides: arrays are immutable, random
numbers come from explicit keys (kept and split here), and out-of-range gathers clamp
silently (checked here, so ``index`` raises ``IndexError`` like everywhere else).

Random numbers under ``jit``: a key split inside a compiled function is a tracer, and
keeping it would make every call draw the same numbers (and break the next draw outside).
A draw (``be.normal``, ``be.permutation``) while tracing is therefore a
``vecx.TracedRandomness`` error, unless the function was compiled with
``be.jit(f, rng=True)``, which passes the backend's key in and the next key out of each
call, so every call draws fresh numbers from the backend's stream. ``be.jit(f)`` without
``rng`` is ``jax.jit(f)`` itself: a Python wrapper around it would cost 2-4 us per call, a
tenth of a small training step (bench/README.md).

Inside ``value_and_grad``, ``float(v)``, ``int(v)``, ``v.item()`` or ``v.tolist()`` of a
traced value is a ``TypeError``, as on NumPy and PyTorch: JAX's own linearize tracers hand
back the value, a constant, and the gradient through it is silently lost. The first vecx
``value_and_grad`` wraps those methods of ``jax.core.Tracer`` once in the process; the
wrapper raises only while the calling thread is inside a vecx JAX gradient.

Gradient dtypes: a gradient has the dtype of its argument on every backend. JAX without
64-bit mode cannot hold a float64 argument, so a float64 host array differentiated on a
float32 JAX backend is an ``UnsupportedDtype`` error, not a float32 gradient.

GPU memory: by default JAX grabs 75% of every GPU's memory when it first initialises,
and with jax[cuda] installed even ``jax.devices("cpu")`` initialises CUDA. vecx runs JAX
next to PyTorch and CuPy in one process (``vecx info``, ``vecx train``, the pytest
plugin), so when this module is the first to import jax it sets
``XLA_PYTHON_CLIENT_PREALLOCATE=false``: JAX then allocates as it goes. The variable is
only set where it is unset, so ``XLA_PYTHON_CLIENT_PREALLOCATE=true`` (or
``XLA_PYTHON_CLIENT_MEM_FRACTION``) in the environment still wins, and a program that
imported jax itself keeps its own settings.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from vecx.backends._base import (
    BaseBackend,
    CompiledStep,
    check_argnums,
    check_index_bounds,
    loss_output,
    matmul_shape_error,
    normalize_argnums,
    normalize_shape,
)
from vecx.backends.numpy import _is_integer
from vecx.environment import cpu_model
from vecx.protocol import (
    DTYPES,
    BackendUnavailable,
    Capabilities,
    TracedRandomness,
    UnsupportedDtype,
)

DRAW_IN_JIT = (
    "be.normal/be.permutation inside a compiled function would keep a traced key (every "
    "call would draw the same numbers); compile it with be.jit(f, rng=True), which passes "
    "the backend's key through, or draw outside"
)


#: Tracer methods that would make a traced value a Python constant (module docstring).
HOST_METHODS = ("__float__", "__int__", "__complex__", "item", "tolist")
_grad_depth = threading.local()  # how many vecx JAX gradients run f on this thread
_guard_lock = threading.Lock()
_guarded = False


def _guard_host_conversions(jax: Any) -> None:
    """Wrap `HOST_METHODS` of ``jax.core.Tracer`` once per process: inside a vecx gradient
    they raise, as on NumPy and PyTorch (JAX's own linearize tracers hand back the value
    of ``s.item()`` or ``int(s)``, a constant, and the gradient through it is lost)."""
    global _guarded
    with _guard_lock:
        if _guarded:
            return
        tracer = jax.core.Tracer
        for name in HOST_METHODS:
            original = getattr(tracer, name, None)
            if original is not None:
                setattr(tracer, name, _guard(name, original))
        _guarded = True


def _guard(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    what = f"{name.strip('_')}()" if name.startswith("__") else f".{name}()"

    def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(_grad_depth, "depth", 0):
            raise TypeError(
                f"{what} of a traced array inside a function differentiated by vecx's JAX "
                "backend would make it a constant and silently drop its gradient; keep it an "
                "array (the operators and the backend's methods), or return it as aux with "
                "has_aux=True"
            )
        return original(self, *args, **kwargs)

    guarded.__name__ = guarded.__qualname__ = name
    guarded.__doc__ = original.__doc__
    guarded.__wrapped__ = original  # type: ignore[attr-defined]
    return guarded


class _TraceKeys(threading.local):
    """Per thread: the keys of the ``be.jit`` traces that pass the key through (a stack)."""

    def __init__(self) -> None:
        self.stack: list[Any] = []


def _import_jax() -> Any:
    """``import jax``; the first import in the process does not preallocate GPU memory."""
    if "jax" not in sys.modules:
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    import jax

    return jax


def _devices(kind: str) -> list[Any]:
    jax = _import_jax()

    try:
        return jax.devices(kind)
    except RuntimeError:
        return []


def probe(device: str) -> str | None:
    kind = "gpu" if device.startswith("cuda") else "cpu"
    found = _devices(kind)
    if not found:
        return "no CUDA device visible to jax (install jax[cuda12] on a GPU machine)"
    ordinal = int(device.split(":")[1]) if ":" in device else 0
    if ordinal >= len(found):
        return f"{device} requested but jax sees {len(found)} {kind} device(s)"
    return None


def _same_order(like: Any, tree: Any) -> Any:
    """``tree`` with its dicts' keys in ``like``'s order (JAX sorts them)."""
    if isinstance(like, dict) and isinstance(tree, dict):
        items = [(k, _same_order(like[k], tree[k])) for k in like]
        try:
            return type(tree)(items)
        except TypeError:  # a defaultdict: a plain dict of the same items
            return dict(items)
    if isinstance(like, (list, tuple)) and isinstance(tree, (list, tuple)):
        items = [_same_order(a, b) for a, b in zip(like, tree, strict=True)]
        return type(tree)._make(items) if hasattr(type(tree), "_fields") else type(tree)(items)
    return tree


def _abs_with_zero_slope() -> Any:
    """``|x|`` whose gradient at 0 is 0, as in PyTorch and vecx's NumPy autodiff (JAX's own
    ``jnp.abs`` passes 1 there)."""
    import jax
    import jax.numpy as jnp

    @jax.custom_jvp
    def abs_(x: Any) -> Any:
        return jnp.abs(x)

    @abs_.defjvp
    def abs_jvp(primals: Any, tangents: Any) -> Any:
        (x,), (t,) = primals, tangents
        return jnp.abs(x), jnp.sign(x) * t

    return abs_


def _take(x: Any, idx: Any) -> Any:
    import jax.numpy as jnp

    return jnp.take(x, idx, axis=0, mode="fill")


def _take_checked(x: Any, idx: Any) -> tuple[Any, Any]:
    n = x.shape[0]
    return _take(x, idx), ((idx >= n) | (idx < -n)).any()


def _owned_int32(block: Any) -> Any:
    """A host index block as JAX takes it fastest: an int32 array of its own (a view of
    the epoch's permutation costs ~50 us more to transfer, and int64 is cut to int32
    anyway without 64-bit mode)."""
    if type(block) is np.ndarray and block.dtype == np.int64 and block.size and (
            block.max() < 2**31 and block.min() >= -(2**31)):  # fmt: skip
        return block.astype(np.int32)
    return block


class DeviceMesh:
    """Devices of one platform as a one-axis mesh, for ``fit(workers=N)`` on JAX: the
    data, the parameters and the state replicated on every device (``place``), each
    minibatch split along its first axis inside the compiled step (``shard``), so XLA's
    partitioner gives each device its rows and sums the gradient over them (an
    all-reduce) with the semantics of the one-device program: uneven splits included."""

    processes = False
    engine = "xla-mesh"
    rank = 0

    def __init__(self, jax: Any, devices: list[Any]) -> None:
        from jax.sharding import Mesh, NamedSharding, PartitionSpec

        self.jax = jax
        self.workers = len(devices)
        mesh = Mesh(np.array(devices), ("batch",))
        self._replicated = NamedSharding(mesh, PartitionSpec())
        self._rows = NamedSharding(mesh, PartitionSpec("batch"))

    def place(self, x: Any) -> Any:
        return self.jax.device_put(x, self._replicated)

    def shard(self, x: Any) -> Any:
        return self.jax.lax.with_sharding_constraint(x, self._rows)

    def batch(self, index: Any, X: Any, y: Any, idx: Any) -> tuple[Any, Any, None]:
        """The whole minibatch, split over the devices: the indices first, so that each
        device gathers its own rows (gathering them all, then splitting, would copy the
        whole batch on every device); the compiler does the rest."""
        idx = self.shard(idx)
        return self.shard(index(X, idx)), self.shard(index(y, idx)), None

    def reduce(self, grads: tuple) -> tuple:
        return grads  # the partitioned program's gradient is already the sum

    def close(self) -> None:
        pass


class JaxBackend(BaseBackend):
    name = "jax"

    def __init__(self, device: str = "cpu", **kwargs: Any) -> None:
        super().__init__(device, **kwargs)
        jax = _import_jax()
        import jax.numpy as jnp
        from jax import nn as jnn

        reason = probe(device)
        if reason:
            raise BackendUnavailable(self.spec, reason)
        self.jax, self.xp = jax, jnp
        kind = "gpu" if device.startswith("cuda") else "cpu"
        self._device = _devices(kind)[int(device.split(":")[1]) if ":" in device else 0]
        # Process-wide in JAX: full float32 unless tf32 was asked for (info() reports it).
        precision = "tensorfloat32" if self.precision == "tf32" else "highest"
        jax.config.update("jax_default_matmul_precision", precision)
        self._check_x64(self.dtype)
        x64 = bool(jax.config.jax_enable_x64)
        self.capabilities = Capabilities(
            compiles=True, immutable_arrays=True, asynchronous=True, higher_order_grad=True,
            dtypes=frozenset(d for d in DTYPES if x64 or d != "float64"),
        )
        self._traced_keys = _TraceKeys()
        # Our own jitted gathers dispatch faster than jnp.take (~1 us): this pays for the
        # host bounds check. Out-of-range rows are NaN ("fill"), never clamped, when the
        # indices cannot be checked (inside jit).
        self._take = jax.jit(_take)
        self._take_checked = jax.jit(_take_checked)
        self._elementwise = {
            "exp": jnp.exp, "log": jnp.log, "tanh": jnp.tanh, "sigmoid": jnn.sigmoid,
            "sqrt": jnp.sqrt, "abs": _abs_with_zero_slope(), "maximum": jnp.maximum,
            "minimum": jnp.minimum, "where": jnp.where,
        }  # fmt: skip
        self._reductions = {
            "sum": jnp.sum, "mean": jnp.mean, "max": jnp.max, "min": jnp.min,
            "logsumexp": jnn.logsumexp,
        }  # fmt: skip
        self.seed(self._seed)

    def _check_x64(self, dtype: str) -> str:
        if dtype == "float64" and not self.jax.config.jax_enable_x64:
            raise UnsupportedDtype(
                "float64 on JAX needs 64-bit mode, which is off: set JAX_ENABLE_X64=1 before "
                "importing jax, or call jax.config.update('jax_enable_x64', True)"
            )
        return dtype

    def _jax_dtype(self, dtype: str | None) -> Any:
        return self._any_dtype(self._dtype_name(dtype))

    def _put(self, x: Any) -> Any:
        return self.jax.device_put(x, self._device)

    def ones(self, shape: Any, dtype: str | None = None) -> Any:
        return self.xp.ones(normalize_shape(shape), self._jax_dtype(dtype), device=self._device)

    def zeros(self, shape: Any, dtype: str | None = None) -> Any:
        return self.xp.zeros(normalize_shape(shape), self._jax_dtype(dtype), device=self._device)

    def asarray(self, obj: Any, dtype: str | None = None) -> Any:
        import numpy as np

        if dtype is None and _is_integer(obj):
            host = np.asarray(obj)
            if host.dtype.itemsize == 8 and not self.jax.config.jax_enable_x64 and host.size:
                info = np.iinfo(np.int32)  # JAX would wrap these into int32 silently
                if host.min() < info.min or host.max() > info.max:
                    raise UnsupportedDtype(
                        "integers beyond int32 need JAX's 64-bit mode, which is off: set "
                        "JAX_ENABLE_X64=1 before importing jax"
                    )
            return self._put(host)
        target = self._jax_dtype(dtype)
        if isinstance(obj, self.jax.Array):
            return self._put(obj.astype(target))
        return self._put(np.asarray(obj).astype(np.dtype(target), copy=False))

    def to_numpy(self, x: Any) -> Any:
        import numpy as np

        if x.dtype == self.xp.bfloat16:
            x = x.astype(self.xp.float32)
        return np.asarray(x)

    def seed(self, seed: int) -> None:
        self._seed = int(seed)
        # Committed to this device, so that splitting and drawing run here, not on JAX's
        # default device (a GPU, when there is one, even for jax:cpu).
        self._key = self._put(self.jax.random.key(self._seed))

    def _next_key(self) -> Any:
        stack = self._traced_keys.stack
        if stack:  # inside a be.jit that passes the key through: draw from its key
            stack[-1], sub = self.jax.random.split(stack[-1])
            return sub
        key, sub = self.jax.random.split(self._key)
        if isinstance(key, self.jax.core.Tracer):  # inside some trace: never keep it
            raise TracedRandomness(DRAW_IN_JIT)
        self._key = key
        return sub

    def normal(self, mean: float, std: float, shape: Any, dtype: str | None = None) -> Any:
        x = self.jax.random.normal(
            self._next_key(), normalize_shape(shape), self._any_dtype(self._float_name(dtype))
        )
        return self._put(x * std + mean if (std != 1 or mean != 0) else x)

    def permutation(self, n: int) -> Any:
        return self._put(self.jax.random.permutation(self._next_key(), int(n)))

    def matmul(self, a: Any, b: Any) -> Any:
        try:
            return a @ b
        except (TypeError, ValueError) as exc:
            raise matmul_shape_error(a, b, exc) from None

    def index(self, x: Any, idx: Any) -> Any:
        """Gather rows; raise IndexError out of range where JAX itself would clamp.

        Host indices are checked on the host. A concrete device index array is checked
        with one device-to-host read. Inside ``jit`` the indices are abstract and cannot be
        checked: out-of-range rows then come back as NaN (``mode="fill"``), never clamped.
        """
        if type(idx) is np.ndarray and idx.ndim == 1 and idx.size <= 256:
            # The hot path, a host minibatch: inlined, as every call here costs more
            # between two JAX dispatches than it does alone (bench/overhead.py).
            if idx.size:
                rows, n = idx.tolist(), x.shape[0]
                if max(rows) >= n or min(rows) < -n:
                    check_index_bounds(idx, n)
            return self._take(x, idx)
        if isinstance(idx, self.jax.Array):
            tracer = self.jax.core.Tracer
            if isinstance(idx, tracer):
                return self._take(x, idx)
            if isinstance(x, tracer):  # inside jit or grad, a constant index: check on host
                check_index_bounds(self.to_numpy(idx), x.shape[0])  # (JAX ops would trace)
                return self._take(x, idx)
            rows, out_of_range = self._take_checked(x, idx)  # one dispatch, one read
            if out_of_range:
                check_index_bounds(self.to_numpy(idx), x.shape[0])
            return rows
        check_index_bounds(idx, x.shape[0])
        return self._take(x, idx if type(idx) is np.ndarray else np.asarray(idx))

    # math (see vecx.backends._base for the semantics)
    def _map(self, name: str, *args: Any) -> Any:
        if name == "clip":  # as torch.clamp: gradient 1 on [lo, hi], closed
            x, lo, hi = args
            jnp = self.xp
            if lo is not None:
                x = jnp.where(x < lo, lo, x)
            return x if hi is None else jnp.where(x > hi, hi, x)
        return self._elementwise[name](*args)

    def _reduce(self, name: str, x: Any, axes: Any, keepdims: bool) -> Any:
        return self._reductions[name](x, axis=axes, keepdims=keepdims)

    def _astype(self, x: Any, dtype: str) -> Any:
        return x.astype(self._any_dtype(dtype))

    def _any_dtype(self, dtype: str) -> Any:
        if dtype == "int64" and not self.jax.config.jax_enable_x64:
            raise UnsupportedDtype(
                "int64 on JAX needs 64-bit mode, which is off: set JAX_ENABLE_X64=1 before "
                "importing jax, or call jax.config.update('jax_enable_x64', True)"
            )
        return getattr(self.xp, self._check_x64(dtype))

    def _isfinite(self, x: Any) -> Any:
        return self.xp.isfinite(x)

    def _floating(self, x: Any) -> bool:
        return bool(self.xp.issubdtype(self.xp.result_type(x), self.xp.floating))

    def value_and_grad(
        self, f: Callable[..., Any], argnums: Any = 0, has_aux: bool = False
    ) -> Callable:
        """``jax.value_and_grad``, but any size-1 output is accepted, as on the other
        backends, a larger one is a ``ValueError`` (JAX raises ``TypeError``), and errors
        read as on the other backends."""
        nums, single = normalize_argnums(argnums)

        def scalar_f(*args: Any) -> tuple[Any, Any]:
            out, aux = loss_output(f(*args), has_aux)
            if getattr(out, "size", 1) != 1:
                raise ValueError(
                    f"value_and_grad needs f to return a scalar, got shape {tuple(out.shape)}"
                )
            dtype = self.xp.result_type(out)
            if not self.xp.issubdtype(dtype, self.xp.inexact):
                raise TypeError(
                    f"value_and_grad needs f to return a floating-point scalar, got {dtype} "
                    "(as in JAX)"
                )
            return (out.reshape(()) if getattr(out, "ndim", 0) else out), (out, aux)

        x64 = self.jax.config.jax_enable_x64
        built: dict[int, tuple[Any, tuple[int, ...], tuple[int, ...]]] = {}

        def build(nargs: int) -> tuple[Any, tuple[int, ...], tuple[int, ...]]:
            positions = check_argnums(nums, nargs)  # a ValueError, not JAX's TypeError
            unique = tuple(dict.fromkeys(positions))  # JAX would zero a repeated argnum
            argnums = unique[0] if single else unique
            vg = self.jax.value_and_grad(scalar_f, argnums=argnums, has_aux=True)
            built[nargs] = (vg, positions, unique)
            return built[nargs]

        _guard_host_conversions(self.jax)

        def value_and_grad_f(*args: Any) -> tuple[Any, Any]:
            vg, positions, unique = built.get(len(args)) or build(len(args))
            if not x64:
                self._check_host_float64(args, positions)
            depth = getattr(_grad_depth, "depth", 0)
            _grad_depth.depth = depth + 1
            try:
                (_, (value, aux)), grads = vg(*args)
            finally:
                _grad_depth.depth = depth
            # JAX hands dicts back with their keys sorted: in the arguments' order instead
            if single:
                grads = _same_order(args[positions[0]], grads)
            else:
                by_arg = {i: _same_order(args[i], g) for i, g in zip(unique, grads, strict=True)}
                grads = tuple(by_arg[i] for i in positions)
            return ((value, aux) if has_aux else value), grads

        return value_and_grad_f

    def _check_host_float64(self, args: tuple, positions: tuple[int, ...]) -> None:
        """A float64 host argument cannot keep its dtype without 64-bit mode: an error,
        not a gradient silently computed (and returned) in float32."""
        for i in positions:
            for leaf in self.jax.tree_util.tree_leaves(args[i]):
                if isinstance(leaf, (np.ndarray, np.generic)) and leaf.dtype == np.float64:
                    raise UnsupportedDtype(
                        f"argument {i} is a float64 array, but JAX's 64-bit mode is off, so "
                        "its gradient could only be float32: pass be.asarray(x) (float32), "
                        "or set JAX_ENABLE_X64=1 before importing jax"
                    )

    def jit(self, f: Callable, *, rng: bool = False) -> Callable:
        """``jax.jit(f)``; with ``rng=True``, the backend's key passes through ``f`` (see
        the module docstring), so every call draws fresh numbers."""
        jax = self.jax
        if not rng:
            return jax.jit(f)
        local = self._traced_keys

        def with_key(key: Any, *args: Any, **kwargs: Any) -> Any:
            stack = local.stack
            stack.append(key)
            try:
                out = f(*args, **kwargs)
                return out, stack[-1]
            finally:
                stack.pop()

        keyed = jax.jit(with_key)
        tracer = jax.core.Tracer

        @functools.wraps(f)
        def jitted(*args: Any, **kwargs: Any) -> Any:
            if local.stack:  # inside another keyed trace: be part of it
                return f(*args, **kwargs)
            out, key = keyed(self._key, *args, **kwargs)
            if isinstance(key, tracer):  # called while some other function is traced
                raise TracedRandomness(
                    "a be.jit(f, rng=True) function was called inside another compiled "
                    "function that does not pass the key through: compile that one with "
                    "be.jit(..., rng=True) too"
                )
            self._key = key
            return out

        def warm(*args: Any, **kwargs: Any) -> Any:
            """Run once (compiling it) without using up the backend's random numbers."""
            return keyed(self._key, *args, **kwargs)[0]

        jitted.warm = warm  # type: ignore[attr-defined]
        jitted.cache_size = keyed._cache_size  # type: ignore[attr-defined]
        return jitted

    def compile(self, step: Callable, *, mode: str, rng: bool = False) -> CompiledStep:
        """``jit``: ``jax.jit`` of the step (``be.jit``). ``fused``: ``jax.jit`` of a
        ``lax.scan`` of the step over the rows of a segment's index block, so a segment is
        one dispatch; with ``rng``, the backend's key is carried through the scan."""
        jax = self.jax
        if mode == "eager":  # op by op; a warm-up must leave the key as it was

            def warm_eager(*args: Any) -> Any:
                key = self._key
                try:
                    return step(*args)
                finally:
                    self._key = key

            return CompiledStep(step, lambda: 0, warm=warm_eager)
        if mode == "jit":
            fn = self.jit(step, rng=rng)
            count = fn.cache_size if rng else fn._cache_size  # type: ignore[attr-defined]
            return CompiledStep(fn, count, warm=getattr(fn, "warm", None))
        if mode != "fused":
            return super().compile(step, mode=mode, rng=rng)
        scan = jax.lax.scan
        if not rng:

            def over(state: Any, block: Any, *args: Any) -> Any:
                return scan(lambda s, idx: (step(s, idx, *args), None), state, block)[0]

            jitted = jax.jit(over)

            def fused(state: Any, block: Any, *args: Any) -> Any:
                return jitted(state, _owned_int32(block), *args)

            return CompiledStep(fused, jitted._cache_size)
        stack = self._traced_keys.stack

        def over_keyed(key: Any, state: Any, block: Any, *args: Any) -> Any:
            def body(carry: Any, idx: Any) -> Any:
                s, k = carry
                stack.append(k)
                try:
                    s = step(s, idx, *args)
                    k = stack[-1]
                finally:
                    stack.pop()
                return (s, k), None

            (s, k), _ = scan(body, (state, key), block)
            return s, k

        keyed = jax.jit(over_keyed)

        def fused_keyed(state: Any, block: Any, *args: Any) -> Any:
            s, self._key = keyed(self._key, state, _owned_int32(block), *args)
            return s

        def warm(state: Any, block: Any, *args: Any) -> Any:
            return keyed(self._key, state, _owned_int32(block), *args)[0]

        return CompiledStep(fused_keyed, keyed._cache_size, warm=warm)

    def sync(self, x: Any = None) -> Any:
        """Block on ``x``; with no argument, on a fresh tiny computation on this device.

        JAX dispatches asynchronously even on the CPU; without ``x`` there is no handle
        to all queued work, so we rely on in-order execution on the device's stream.
        """
        if x is None:
            self.xp.zeros((), device=self._device).block_until_ready()
            return x
        return self.jax.block_until_ready(x)

    def info(self) -> dict[str, Any]:
        jax = self.jax
        name = cpu_model() if self._device.platform == "cpu" else self._device.device_kind
        precision = jax.config.jax_default_matmul_precision
        return {
            **self._base_info(),
            "framework": "jax",
            "version": jax.__version__,
            "device_name": name,
            "matmul_precision": "tf32" if precision == "tensorfloat32" else "float32",
            "x64": bool(jax.config.jax_enable_x64),
        }

    def thread_pools(self) -> list[dict[str, Any]]:
        """XLA:CPU's intra-op pool: one thread per CPU unless ``XLA_FLAGS`` held it to
        one before JAX started (XLA has no flag for another count)."""
        if self._device.platform != "cpu":
            return []
        import os

        flags = os.environ.get("XLA_FLAGS", "")
        one = ("intra_op_parallelism_threads=1" in flags
               or "xla_cpu_multi_thread_eigen=false" in flags)  # fmt: skip
        from vecx.environment import usable_cpus

        return [{"pool": "intra-op", "library": "XLA:CPU", "version": self.jax.__version__,
                 "threads": 1 if one else usable_cpus()}]  # fmt: skip

    def device_mesh(self, workers: int) -> DeviceMesh:
        """The first ``workers`` devices of this backend's platform as a `DeviceMesh`
        (the same object for the same count, so compiled steps are reused)."""
        meshes = self.__dict__.setdefault("_meshes", {})
        if workers in meshes:
            return meshes[workers]
        platform = self._device.platform
        found = _devices("gpu" if platform != "cpu" else "cpu")
        if len(found) < workers:
            hint = (f": start Python with XLA_FLAGS=--xla_force_host_platform_device_count="
                    f"{workers} (set before JAX is imported) to split the CPU into "
                    f"{workers} devices" if platform == "cpu" else "")  # fmt: skip
            raise ValueError(f"workers={workers} needs {workers} {platform} devices; jax sees "
                             f"{len(found)}{hint}")  # fmt: skip
        mesh = meshes[workers] = DeviceMesh(self.jax, found[:workers])
        return mesh

    def set_threads(self, threads: int) -> bool:
        return False  # XLA sizes its pools when JAX starts (XLA_FLAGS), not later
