"""PyTorch on the CPU or a CUDA device; gradients through ``torch.autograd``.

float32 matmul precision is process-wide in PyTorch: building a backend sets it (full
IEEE float32, or TF32 with ``precision="tf32"``) for every backend and every other user
of torch in the process, and ``info()["matmul_precision"]`` reports what is set now, read
back from torch, whichever backend asks. PyTorch >= 2.9 has per-backend settings
(``torch.backends.cuda.matmul.fp32_precision``, ``torch.backends.mkldnn.matmul...``,
"ieee" or "tf32") and refuses to mix them with the legacy
``torch.set_float32_matmul_precision`` / ``get_float32_matmul_precision`` (the legacy
getter raises once the new API was used); vecx uses the new API where it exists, the
legacy one on older PyTorch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from vecx.backends._base import (
    SCALARS,
    BaseBackend,
    CompiledStep,
    check_argnums,
    check_index_bounds,
    host_index,
    loss_output,
    matmul_shape_error,
    normalize_argnums,
    normalize_shape,
)
from vecx.backends.numpy import _is_integer
from vecx.environment import cpu_model
from vecx.protocol import DTYPES, OTHER_DTYPES, Capabilities, ModeUnsupported
from vecx.pytree import flatten, tree_map

#: Tensor methods that reduce a whole tensor, by reduction name.
_WHOLE = {"sum": "sum", "mean": "mean", "max": "amax", "min": "amin"}


def _own(flat: list[Any], grads: Any, depth: int) -> list[Any]:
    """Gradients that are tensors of their own: zeros for an unused argument, a copy where
    autograd hands back one tensor for two arguments (``x + y``) or a broadcast view (the
    gradient of ``x.sum()``, stride 0, which an in-place ``g += 1`` refuses)."""
    out: list[Any] = []
    seen: set[int] = set()
    for x, g in zip(flat, grads, strict=True):
        if g is None:
            g = x.new_zeros(x.shape)
        elif id(g) in seen or (not depth and g.numel() > 1 and 0 in g.stride()):
            g = g.clone(memory_format=_contiguous())
        seen.add(id(g))
        out.append(g)
    return out


def _contiguous() -> Any:
    import torch

    return torch.contiguous_format


def _cloned(leaf: Any) -> Any:
    return leaf.clone() if hasattr(leaf, "clone") else leaf


def _detached(leaf: Any) -> Any:
    return leaf.detach() if hasattr(leaf, "detach") and hasattr(leaf, "requires_grad") else leaf


def probe(device: str) -> str | None:
    """Why ``device`` cannot be used, or None."""
    import torch

    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            return "no CUDA device visible to torch (torch.cuda.is_available() is False)"
        ordinal = int(device.split(":")[1])
        if ordinal >= torch.cuda.device_count():
            return f"{device} requested but torch sees {torch.cuda.device_count()} CUDA device(s)"
    return None


def _new_precision_api(torch: Any) -> bool:
    try:
        torch.backends.cuda.matmul.fp32_precision  # noqa: B018 - raises before torch 2.9
        torch.backends.mkldnn.matmul.fp32_precision  # noqa: B018
    except (AttributeError, RuntimeError):
        return False
    return True


def set_matmul_precision(torch: Any, tf32: bool) -> None:
    """Full float32 or TF32 for float32 matmuls, on CUDA (cuBLAS) and the CPU (oneDNN)."""
    if _new_precision_api(torch):
        value = "tf32" if tf32 else "ieee"
        torch.backends.cuda.matmul.fp32_precision = value
        torch.backends.mkldnn.matmul.fp32_precision = value
    else:
        torch.set_float32_matmul_precision("high" if tf32 else "highest")


def matmul_precision(torch: Any, cuda: bool) -> str:
    """``"float32"``, ``"tf32"`` (or ``"bf16"``) as set in torch now; never raises."""
    try:
        if _new_precision_api(torch):
            matmul = torch.backends.cuda.matmul if cuda else torch.backends.mkldnn.matmul
            value = matmul.fp32_precision
            if value == "none":  # inherits the generic setting
                value = getattr(torch.backends, "fp32_precision", "none")
            return {"ieee": "float32", "none": "float32"}.get(value, value)
        value = torch.get_float32_matmul_precision()
        return {"highest": "float32", "high": "tf32", "medium": "bf16"}.get(value, value)
    except Exception as exc:  # info() must work whatever state torch is in
        return f"unknown ({type(exc).__name__}: {exc})"


_nesting = threading.local()  # how many vecx torch grads are running f on this thread

#: Tensor methods that would make a traced value a Python constant (module docstring).
HOST_METHODS = ("__float__", "__int__", "__complex__", "item", "tolist", "numpy", "__array__")
#: Tensor methods that only show a value (print, f-strings): the guard lets them through.
SHOW_METHODS = ("__repr__", "__format__")
_guard_lock = threading.Lock()
_guarded = False


def _inside_grad() -> bool:
    return getattr(_nesting, "depth", 0) > 0 and not getattr(_nesting, "showing", 0)


def _guard_host_conversions(torch: Any) -> None:
    """Wrap `HOST_METHODS` of ``torch.Tensor`` once per process (see the module docstring)."""
    global _guarded
    with _guard_lock:
        if _guarded:
            return
        for name in HOST_METHODS:
            original = getattr(torch.Tensor, name, None)
            if original is not None:
                setattr(torch.Tensor, name, _guard(name, original))
        for name in SHOW_METHODS:
            setattr(torch.Tensor, name, _showing(getattr(torch.Tensor, name)))
        _guarded = True


def _guard(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
    what = f"{name.strip('_')}()" if name.startswith("__") else f".{name}()"
    if name == "__array__":  # np.asarray(t), or a NumPy function applied to t
        what = "converting to a NumPy array (np.asarray, or a NumPy function: be.log, not np.log)"

    def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
        if self.requires_grad and _inside_grad():
            raise TypeError(_constant_error(what))
        return original(self, *args, **kwargs)

    guarded.__name__ = guarded.__qualname__ = name
    guarded.__doc__ = original.__doc__
    guarded.__wrapped__ = original  # type: ignore[attr-defined]
    return guarded


def _showing(original: Callable[..., Any]) -> Callable[..., Any]:
    """``print(loss)`` inside a gradient shows the value (it cannot become a constant)."""

    def show(self: Any, *args: Any, **kwargs: Any) -> Any:
        _nesting.showing = getattr(_nesting, "showing", 0) + 1
        try:
            return original(self, *args, **kwargs)
        finally:
            _nesting.showing -= 1

    show.__name__ = show.__qualname__ = original.__name__
    show.__doc__ = original.__doc__
    show.__wrapped__ = original  # type: ignore[attr-defined]
    return show


def _constant_error(what: str) -> str:
    return (
        f"{what} of a traced tensor inside a function differentiated by vecx's torch "
        "backend would make it a constant and silently drop its gradient; keep it a "
        "tensor (the operators and the backend's methods: be.exp, be.sum, ...), or return "
        "it as aux with has_aux=True"
    )


class TorchBackend(BaseBackend):
    name = "torch"
    capabilities = Capabilities(
        compiles=False, immutable_arrays=False, asynchronous=False, higher_order_grad=True,
        dtypes=frozenset(DTYPES),
    )

    def __init__(self, device: str = "cpu", **kwargs: Any) -> None:
        super().__init__(device, **kwargs)
        import torch

        from vecx.protocol import BackendUnavailable

        reason = probe(device)
        if reason:
            raise BackendUnavailable(self.spec, reason)
        self.xp = torch
        self._device = torch.device(device)
        self._cuda = self._device.type == "cuda"
        if self._cuda:  # kernels are queued on the device's stream
            self.capabilities = Capabilities(
                compiles=False, immutable_arrays=False, asynchronous=True,
                higher_order_grad=True, dtypes=frozenset(DTYPES),
            )
        # Process-wide in PyTorch: full float32 unless tf32 was asked for (info() reports it).
        set_matmul_precision(torch, self.precision == "tf32")
        self._dtypes = {n: getattr(torch, n) for n in DTYPES + OTHER_DTYPES}
        self._elementwise = {
            "exp": torch.exp, "log": torch.log, "tanh": torch.tanh, "sigmoid": torch.sigmoid,
            "sqrt": torch.sqrt, "abs": torch.abs,
        }  # fmt: skip
        self._reductions = {
            "sum": torch.sum, "mean": torch.mean, "max": torch.amax, "min": torch.amin,
            "logsumexp": _logsumexp,
        }  # fmt: skip
        self._constants: dict[tuple[Any, ...], Any] = {}
        self._tensor = torch.Tensor
        self._generator = torch.Generator(device=self._device)
        self._from_numpy = torch.from_numpy
        self.seed(self._seed)

    def _torch_dtype(self, dtype: str | None) -> Any:
        return self._dtypes[self.dtype if dtype is None else self._dtype_name(dtype)]

    def ones(self, shape: Any, dtype: str | None = None) -> Any:
        return self.xp.ones(
            normalize_shape(shape), dtype=self._torch_dtype(dtype), device=self._device
        )

    def zeros(self, shape: Any, dtype: str | None = None) -> Any:
        return self.xp.zeros(
            normalize_shape(shape), dtype=self._torch_dtype(dtype), device=self._device
        )

    def asarray(self, obj: Any, dtype: str | None = None) -> Any:
        torch = self.xp
        if dtype is None and _is_integer(obj):
            return torch.as_tensor(obj, device=self._device)
        if not isinstance(obj, torch.Tensor) and hasattr(obj, "__array__"):
            import numpy as np

            obj = np.asarray(obj)
        return torch.as_tensor(obj, dtype=self._torch_dtype(dtype), device=self._device)

    def to_numpy(self, x: Any) -> Any:
        if x.requires_grad and _inside_grad():
            raise TypeError(_constant_error("be.to_numpy()"))
        x = x.detach()
        if x.dtype == self.xp.bfloat16:
            x = x.float()  # NumPy has no bfloat16; float32 holds every bfloat16 exactly
        return x.cpu().numpy()

    def seed(self, seed: int) -> None:
        self._seed = int(seed)
        self._generator.manual_seed(self._seed)

    #: Random draws so far (``normal``, ``permutation``): how a data-parallel run finds a
    #: loss that draws, whose numbers its ranks cannot reproduce.
    draws = 0

    def normal(self, mean: float, std: float, shape: Any, dtype: str | None = None) -> Any:
        self.draws += 1
        x = self.xp.empty(
            normalize_shape(shape), dtype=self._dtypes[self._float_name(dtype)],
            device=self._device,
        )  # fmt: skip
        return x.normal_(mean, std, generator=self._generator)

    def permutation(self, n: int) -> Any:
        self.draws += 1
        return self.xp.randperm(int(n), generator=self._generator, device=self._device)

    def matmul(self, a: Any, b: Any) -> Any:
        try:
            return a @ b
        except RuntimeError as exc:
            raise matmul_shape_error(a, b, exc) from None

    def index(self, x: Any, idx: Any) -> Any:
        if type(idx) is np.ndarray and not self._cuda and idx.flags.writeable:
            try:  # the hot path, a host minibatch on the CPU, where torch checks bounds
                rows = self._from_numpy(idx)
            except (TypeError, ValueError):  # negative strides: the general path below
                pass
            else:
                if x.requires_grad:  # autograd keeps the index: a copy of its own, not a
                    rows = rows.clone()  # view of a host array the caller may change
                return self._rows(x, rows)
        torch = self.xp
        if not isinstance(idx, torch.Tensor):
            if self._cuda:  # an out-of-range gather on CUDA is a device assert, not an error
                check_index_bounds(idx, x.shape[0])
            # NumPy then from_numpy: ~1 us where torch.as_tensor takes 1.7 us on an int
            # array and 3.5 us on a list (bench/overhead.py). CPU indexing checks bounds.
            if type(idx) is not np.ndarray:
                idx = host_index(idx)
            elif not idx.flags.writeable:  # torch warns about sharing read-only memory
                idx = idx.copy()
            try:
                idx = torch.from_numpy(idx)
            except (TypeError, ValueError):  # negative strides
                idx = torch.as_tensor(np.ascontiguousarray(idx))
            if self._cuda:
                idx = idx.to(x.device)
            elif x.requires_grad:  # as above: autograd must not keep a view of host memory
                idx = idx.clone()
            return self._rows(x, idx)
        elif self._cuda and not self._capturing() and idx.numel() and (
            bool((idx >= x.shape[0]).any()) or bool((idx < -x.shape[0]).any())
        ):  # (compiled or captured, a check would read back: the trainer's are in range)
            check_index_bounds(idx.cpu().numpy(), x.shape[0])
        return self._rows(x, idx)

    def _rows(self, x: Any, idx: Any) -> Any:
        """``x[idx]``: on the CPU by ``index_select`` for a 1-D index (faster, most for
        wide rows: bench/gather.py), by indexing for another shape or a negative index."""
        if idx.ndim == 1 and x.ndim >= 1 and not self._cuda:  # (CUDA: a device assert)
            try:
                return self.xp.index_select(x, 0, idx)
            except (IndexError, RuntimeError):  # negative or out of range: indexing says
                pass
        return x[idx]

    def _capturing(self) -> bool:
        """Inside ``torch.compile`` or a CUDA graph capture: no value may be read back."""
        torch = self.xp
        return torch.compiler.is_compiling() or torch.cuda.is_current_stream_capturing()

    # math (see vecx.backends._base for the semantics)
    def _constant(self, value: Any, like: Any) -> Any:
        """A Python scalar as a 0-d tensor on ``like``'s device, in the dtype torch's own
        promotion gives the pair (``like``'s for a float tensor; the default float dtype
        for a float scalar with an integer tensor), kept for reuse (``torch.maximum``
        takes no scalars; building one costs ~2 us)."""
        key = (repr(value), like.dtype, like.device)  # repr: -0.0 is not 0.0
        try:
            return self._constants[key]
        except KeyError:
            if len(self._constants) >= 256:
                self._constants.clear()
            dtype = self.xp.result_type(like, value)
            t = self._constants[key] = self.xp.as_tensor(value, dtype=dtype, device=like.device)
            return t

    def _tensors(self, a: Any, b: Any) -> tuple[Any, Any]:
        if type(a) in SCALARS:
            return self._constant(a, b), b
        if type(b) in SCALARS:
            return a, self._constant(b, a)
        return a, b

    def _map(self, name: str, *args: Any) -> Any:
        torch = self.xp
        if name == "maximum":
            return torch.maximum(*self._tensors(*args))
        if name == "minimum":
            return torch.minimum(*self._tensors(*args))
        if name == "where":
            cond, a, b = args
            if not isinstance(cond, torch.Tensor):
                cond = torch.as_tensor(np.asarray(cond, dtype=bool), device=self._device)
            return torch.where(cond, a, b)
        if name == "clip":
            x, lo, hi = args
            if isinstance(lo, torch.Tensor) or isinstance(hi, torch.Tensor):
                # bounds that are tensors: where, as on JAX (torch.clamp's own backward
                # fails for broadcast bounds that need a gradient); ends included
                if lo is not None:
                    x = torch.where(x < lo, lo, x)
                return x if hi is None else torch.where(x > hi, hi, x)
            if not x.is_floating_point() and (isinstance(lo, float) or isinstance(hi, float)):
                x = x.to(torch.result_type(x, lo if isinstance(lo, float) else hi))
            return torch.clamp(x, lo, hi)
        return self._elementwise[name](args[0])

    def _reduce(self, name: str, x: Any, axes: Any, keepdims: bool) -> Any:
        ndim = x.ndim
        if ndim == 0:  # nothing to reduce (torch.logsumexp wants a dimension)
            return x.clone() if name != "sum" or x.is_floating_point() else x.sum()
        if axes is None:
            if not keepdims and name != "logsumexp":  # x.sum(): ~4 us faster than dim=all
                return getattr(x, _WHOLE[name])()
            dims: Any = tuple(range(ndim))
        else:
            dims = axes[0] if len(axes) == 1 else axes  # an int dim: ~5 us faster
        return self._reductions[name](x, dim=dims, keepdim=keepdims)

    def _identity(self, x: Any) -> Any:
        return x.clone()

    def _astype(self, x: Any, dtype: str) -> Any:
        return x.to(self._dtypes[dtype])

    def _isfinite(self, x: Any) -> Any:
        return self.xp.isfinite(x)

    def _floating(self, x: Any) -> bool:
        return x.is_floating_point() if isinstance(x, self._tensor) else super()._floating(x)

    def value_and_grad(
        self, f: Callable[..., Any], argnums: Any = 0, has_aux: bool = False
    ) -> Callable:
        """Plain ``torch.autograd.grad`` on fresh leaves: cheaper than ``torch.func``.

        Arguments may be tensors, host arrays or Python floats (made tensors of this
        backend's dtype, as JAX does); integer ones are a ``TypeError``, as in JAX.
        Called inside another vecx ``grad`` (``grad(grad(f))``) it keeps the graph
        (``create_graph``), so the outer one differentiates through it, as in JAX.
        """
        torch = self.xp
        nums, single = normalize_argnums(argnums)
        _guard_host_conversions(torch)

        def value_and_grad_f(*args: Any) -> tuple[Any, Any]:
            positions = check_argnums(nums, len(args))
            if torch.compiler.is_compiling():  # inside torch.compile: autograd.grad breaks
                return self._functional_value_and_grad(f, args, positions, single, has_aux)
            depth = getattr(_nesting, "depth", 0)
            args = list(args)
            traced = []
            for i in dict.fromkeys(positions):  # each argument once, however often named
                leaves, rebuild = flatten(args[i])
                leaves = [self._grad_leaf(leaf, i, depth) for leaf in leaves]
                args[i] = rebuild(leaves)
                traced.append((i, leaves, rebuild))
            flat = [leaf for _, leaves, _ in traced for leaf in leaves]
            _nesting.depth = depth + 1
            try:
                if torch.is_grad_enabled():  # the usual case: no context to enter (~1 us)
                    out, aux, grads = self._differentiate(f, args, flat, has_aux, depth)
                else:
                    with torch.enable_grad():
                        out, aux, grads = self._differentiate(f, args, flat, has_aux, depth)
            finally:
                _nesting.depth = depth
            grads = _own(flat, grads, depth)
            by_arg, start = {}, 0
            for i, leaves, rebuild in traced:
                by_arg[i] = rebuild(grads[start : start + len(leaves)])
                start += len(leaves)
            if single:
                grad = by_arg[positions[0]]
            else:  # a repeated argnum gets copies, not the same tensors twice
                seen: set[int] = set()
                grad = []
                for i in positions:
                    g = by_arg[i] if i not in seen else tree_map(_cloned, by_arg[i])
                    seen.add(i)
                    grad.append(g)
                grad = tuple(grad)
            value = out if depth else out.detach()
            if has_aux:
                if not depth:
                    aux = tree_map(_detached, aux)
                return (value, aux), grad
            return value, grad

        return value_and_grad_f

    def _functional_value_and_grad(
        self, f: Callable[..., Any], args: tuple, positions: tuple[int, ...], single: bool,
        has_aux: bool,
    ) -> tuple[Any, Any]:  # fmt: skip
        """``value_and_grad`` through ``torch.func.grad``, which ``torch.compile`` traces
        into one graph with the forward (``mode="jit"``)."""
        torch = self.xp
        unique = tuple(dict.fromkeys(positions))

        def scalar_f(*differentiated: Any) -> tuple[Any, Any]:
            full = list(args)
            for i, a in zip(unique, differentiated, strict=True):
                full[i] = a
            out, aux = loss_output(f(*full), has_aux)
            return out.reshape(()), ((out, aux) if has_aux else out)

        grads, kept = torch.func.grad(
            scalar_f, argnums=tuple(range(len(unique))), has_aux=True
        )(*(args[i] for i in unique))
        value, aux = kept if has_aux else (kept, None)
        by_arg = dict(zip(unique, grads, strict=True))
        grad = by_arg[positions[0]] if single else tuple(by_arg[i] for i in positions)
        return ((value, aux) if has_aux else value), grad

    def compile(self, step: Callable, *, mode: str, rng: bool = False) -> CompiledStep:
        """``jit``: ``torch.compile(step, fullgraph=True)``, the gradient through
        ``torch.func`` (one graph: gather, forward, backward, update), host indices made
        tensors before the call. ``fused``: a run of steps captured as a CUDA graph and
        replayed (`_graphed`); there are no CUDA graphs on the CPU."""
        torch = self.xp
        if mode == "fused":
            if not self._cuda:
                raise ModeUnsupported(
                    f"mode 'fused' on {self.spec} needs a segment captured as a CUDA graph, "
                    "and CUDA graphs need a CUDA device"
                )
            return self._graphed(step)
        if mode != "jit":
            return super().compile(step, mode=mode, rng=rng)
        compilations = [0]
        inductor = torch._dynamo.lookup_backend("inductor")

        def counting(graph: Any, example_inputs: Any) -> Any:
            compilations[0] += 1
            return inductor(graph, example_inputs)

        compiled = torch.compile(step, fullgraph=True, dynamic=False, backend=counting)
        from_numpy, device, cuda = torch.from_numpy, self._device, self._cuda

        def tensor(idx: Any) -> Any:
            idx = from_numpy(np.ascontiguousarray(idx))
            return idx.to(device, non_blocking=True) if cuda else idx

        unsupported = torch._dynamo.exc.Unsupported
        spec = self.spec

        def call(state: Any, idx: Any, *args: Any) -> Any:
            if type(idx) is np.ndarray:  # a host view each step costs ~20 us in the guards
                idx = tensor(idx)
            try:
                return compiled(state, idx, *args)
            except unsupported as exc:  # dynamo's many-line report, as one line
                raise ModeUnsupported(
                    f"mode 'jit' on {spec}: torch.compile(fullgraph=True) cannot trace the "
                    f"step ({str(exc).strip().splitlines()[0]}); a loss that draws random "
                    "numbers (be.normal, be.permutation) is one it cannot: use mode 'eager'"
                ) from None

        # the hot loop gets each run's rows as tensor views, made once per run
        return CompiledStep(call, lambda: compilations[0], rows=tensor)

    def _graphed(self, step: Callable) -> CompiledStep:
        """``fused`` on CUDA: a run's steps (the eager step, its gradient through autograd)
        captured once as a CUDA graph per run shape and data, with static buffers for the
        state and the index block, then replayed: one launch per run. Captured after a
        warm-up on a side stream (autograd and cuBLAS set up outside the capture)."""
        torch = self.xp
        graphs: dict[Any, Any] = {}

        def capture(state: tuple, block: Any, args: tuple) -> Any:
            static_in = tuple(v.clone() for v in state)
            static_block = torch.empty(block.shape, dtype=torch.int64, device=self._device)
            static_block.copy_(torch.from_numpy(np.ascontiguousarray(block)))
            side = torch.cuda.Stream(self._device)
            side.wait_stream(torch.cuda.current_stream(self._device))
            with torch.cuda.stream(side):
                s = static_in
                for j in range(min(3, block.shape[0])):
                    s = step(s, static_block[j], *args)
            torch.cuda.current_stream(self._device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                s = static_in
                for j in range(block.shape[0]):
                    s = step(s, static_block[j], *args)
            return graph, static_in, static_block, s

        def fused(state: tuple, block: Any, *args: Any) -> tuple:
            # the graph reads the data where it was captured: the key holds its addresses
            key = (tuple(block.shape), tuple((a.data_ptr(), tuple(a.shape), a.dtype)
                                              for a in args if isinstance(a, torch.Tensor)))
            found = graphs.get(key)
            if found is None:
                found = graphs[key] = capture(state, block, args)
            graph, static_in, static_block, out = found
            for buffer, value in zip(static_in, state, strict=True):
                buffer.copy_(value)
            static_block.copy_(torch.from_numpy(np.ascontiguousarray(block)))
            graph.replay()
            return tuple(v.clone() for v in out)  # the next replay overwrites ``out``

        return CompiledStep(fused, lambda: len(graphs))

    def _differentiate(
        self, f: Callable[..., Any], args: list[Any], flat: list[Any], has_aux: bool, depth: int
    ) -> tuple[Any, Any, Any]:
        """Run ``f`` and take ``torch.autograd.grad`` of its scalar output."""
        torch = self.xp
        out, aux = loss_output(f(*args), has_aux)
        if not isinstance(out, torch.Tensor):  # a constant: f ignores its arguments
            out = torch.as_tensor(out)
        if out.numel() != 1:
            raise ValueError(
                f"value_and_grad needs f to return a scalar, got shape {tuple(out.shape)}"
            )
        if not out.is_floating_point():
            raise TypeError(
                f"value_and_grad needs f to return a floating-point scalar, got {out.dtype} "
                "(as in JAX)"
            )
        if out.requires_grad and flat:
            grads = torch.autograd.grad(out, flat, allow_unused=True, create_graph=depth > 0)
        else:
            grads = [None] * len(flat)
        return out, aux, grads

    def _grad_leaf(self, leaf: Any, argnum: int, depth: int) -> Any:
        """A fresh tensor to differentiate by; inside an outer grad, one still tied to it."""
        torch = self.xp
        if not isinstance(leaf, torch.Tensor):
            if type(leaf) is float:  # a Python float: the backend's dtype, as JAX does
                leaf = torch.as_tensor(leaf, dtype=self._torch_dtype(None), device=self._device)
            else:  # host arrays and NumPy scalars keep their dtype; ints are refused below
                leaf = torch.as_tensor(np.asarray(leaf), device=self._device)
        if depth and leaf.requires_grad:
            return leaf.view_as(leaf)  # differentiable back to the outer grad's leaf
        try:
            return leaf.detach().requires_grad_(True)
        except RuntimeError:  # "only Tensors of floating point ... can require gradients"
            raise TypeError(
                f"grad needs floating-point arguments, got {leaf.dtype} (argument {argnum})"
            ) from None

    def sync(self, x: Any = None) -> Any:
        if self._cuda:
            self.xp.cuda.synchronize(self._device)
        return x

    def info(self) -> dict[str, Any]:
        torch = self.xp
        name = torch.cuda.get_device_name(self._device) if self._cuda else cpu_model()
        return {
            **self._base_info(),
            "framework": "torch",
            "version": torch.__version__,
            "device_name": name,
            "matmul_precision": matmul_precision(torch, self._cuda),
            "threads": torch.get_num_threads(),
            "cuda": torch.version.cuda,
        }

    def thread_pools(self) -> list[dict[str, Any]]:
        """torch's own CPU pools: ATen's intra-op pool, its BLAS (MKL or OpenBLAS, linked
        into torch, so threadpoolctl does not see it) and the inter-op pool."""
        if self._cuda:
            return []
        torch = self.xp
        info = torch.__config__.parallel_info()
        layer = next((ln.split(":", 1)[1].strip() for ln in info.splitlines()
                      if ln.startswith("ATen parallel backend")), None)  # fmt: skip
        mkl = next((ln.strip() for ln in info.splitlines() if "Math Kernel Library" in ln), None)
        mkl_threads = next((int(ln.rsplit(":", 1)[1]) for ln in info.splitlines()
                            if "mkl_get_max_threads()" in ln), None)  # fmt: skip
        pools = [{"pool": "intra-op", "library": "ATen", "threads": torch.get_num_threads(),
                  "threading_layer": layer}]  # fmt: skip
        if mkl:
            version = mkl.split("Version", 1)[1].split()[0] if "Version" in mkl else None
            pools.append({"pool": "BLAS", "library": "mkl", "version": version,
                          "threads": mkl_threads})  # fmt: skip
        pools.append({"pool": "inter-op", "library": "ATen",
                      "threads": torch.get_num_interop_threads()})  # fmt: skip
        return pools

    def process_group(self, workers: int, *, rank: int, address: str | None = None,
                      timeout: float = 60.0) -> Any:  # fmt: skip
        """This process as ``rank`` of ``workers`` under torch.distributed (gloo on the
        CPU, NCCL on CUDA): `vecx.backends.torch_distributed.ProcessGroup`, for
        ``fit(workers=N)``. Rank 0 hosts the rendezvous unless ``address="env://"``."""
        from vecx.backends.torch_distributed import ProcessGroup

        if self._cuda:
            self.xp.cuda.set_device(self._device)
        return ProcessGroup(workers, rank, cuda=self._cuda, address=address, timeout=timeout)

    def set_threads(self, threads: int) -> bool:
        """torch's intra-op pool (and with it MKL's) at ``threads`` from now on."""
        if self._cuda:
            return False
        self.xp.set_num_threads(threads)
        return True


def _logsumexp(x: Any, dim: Any, keepdim: bool) -> Any:
    """``torch.logsumexp``, except in bfloat16 and float16: there its gradient,
    ``exp(x - out)``, takes ``out`` rounded to the low dtype, off by ``|out|`` units of
    roundoff, and so is every probability of the softmax (7.5 units at the logits of a
    trained digits MLP). There it is ``max + log(sum(exp(x - max)))`` with the max held
    constant, differentiated by autograd to ``exp(x - max) / sum``: JAX's formula, and the
    NumPy backend's VJP in float16 (``vecx.backends._vjps``). Tensor methods only: no
    module lookup in the step."""
    if not (x.is_floating_point() and x.element_size() == 2):
        return x.logsumexp(dim=dim, keepdim=keepdim)
    m = x.detach().amax(dim=dim, keepdim=True)
    m = m.where(m.isfinite(), m.new_zeros(()))  # all -inf: no shift
    out = (x - m).exp().sum(dim=dim, keepdim=True).log() + m
    return out if keepdim else out.squeeze(dim)
