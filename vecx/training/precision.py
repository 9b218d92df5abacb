"""Mixed precision as a policy of the step: where the casts are, and one loss-scaling rule.

The parameters (the "master weights") and the optimizer state stay in their own dtype
(float32); the step casts the parameters and the batch to the compute dtype (``bfloat16``
or ``float16``) at its start, with the backend's ``astype``, so the cast points are the
same explicit ones on every framework (no autocast list decides). The loss is cast back
to the parameters' dtype before it is differentiated, so the gradients come out in that
dtype through the casts' VJPs, and the update happens there.

float16's narrow range needs loss scaling: the loss is multiplied by a scale before the
gradient and the gradient divided by it after. One dynamic rule, PyTorch GradScaler's
defaults, on every backend: start at 2^16; a step whose gradient holds an inf or a nan is
skipped (the parameters and the optimizer state stay as they were) and the scale halves;
after 2000 finite steps in a row it doubles. The rule is written with ``be.where``, so it
runs inside a compiled step; skipped steps are counted in the step's state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vecx.protocol import Backend, UnsupportedDtype, capabilities

__all__ = ["LOW_PRECISION", "LossScale", "Policy", "get_policy"]

#: Compute dtypes of mixed precision.
LOW_PRECISION = ("bfloat16", "float16")


@dataclass(frozen=True)
class LossScale:
    """Dynamic loss scaling (PyTorch ``torch.amp.GradScaler``'s defaults)."""

    init: float = 2.0**16
    growth: float = 2.0
    backoff: float = 0.5
    interval: int = 2000

    def __post_init__(self) -> None:
        ok = (self.init > 0 and self.growth >= 1 and 0 < self.backoff <= 1
              and isinstance(self.interval, int) and self.interval >= 1)  # fmt: skip
        if not ok:
            raise ValueError(f"a loss scale needs init > 0, growth >= 1, 0 < backoff <= 1 and "
                             f"an integer interval >= 1, got {self}")  # fmt: skip

    def describe(self) -> str:
        return (f"dynamic loss scale {self.init:g}, x{self.growth:g} every {self.interval} "
                f"finite steps, x{self.backoff:g} and skip on inf/nan")  # fmt: skip


@dataclass(frozen=True)
class Policy:
    """Parameters in ``param_dtype``, the step computed in ``compute_dtype``."""

    param_dtype: str
    compute_dtype: str
    loss_scale: LossScale | None = None

    @property
    def mixed(self) -> bool:
        return self.compute_dtype != self.param_dtype

    def describe(self) -> str:
        if not self.mixed:
            return self.param_dtype
        scaled = f", {self.loss_scale.describe()}" if self.loss_scale else ""
        return f"{self.compute_dtype} compute, {self.param_dtype} parameters{scaled}"


def get_policy(be: Backend, compute_dtype: str | None, loss_scale: LossScale | None = None,
               ) -> Policy:  # fmt: skip
    """The policy of ``fit(compute_dtype=...)`` on ``be``: None is the backend's dtype
    (no mixed precision); float16 gets `LossScale` unless one is given. A compute dtype
    the backend cannot run is `vecx.UnsupportedDtype` naming why."""
    param = be.dtype
    if compute_dtype is None or compute_dtype == param:
        if loss_scale is not None:
            raise ValueError(f"loss_scale scales a low-precision step; without a compute_dtype "
                             f"the step computes in {param}: pass compute_dtype='float16' "
                             "(or leave loss_scale out)")  # fmt: skip
        return Policy(param, param)
    if compute_dtype not in LOW_PRECISION:
        raise ValueError(f"compute_dtype must be one of {', '.join(LOW_PRECISION)} (or None: "
                         f"{param}), got {compute_dtype!r}")  # fmt: skip
    if param != "float32":
        raise ValueError(f"mixed precision keeps float32 parameters; {be.spec} computes in "
                         f"{param}: build the backend with dtype='float32'")  # fmt: skip
    if compute_dtype not in capabilities(be).dtypes:
        why = " (NumPy has no bfloat16 type)" if be.name in ("numpy", "cupy") else ""
        raise UnsupportedDtype(f"{be.spec} cannot compute in {compute_dtype}{why}")
    if loss_scale is not None and not isinstance(loss_scale, LossScale):
        raise ValueError(f"loss_scale must be a vecx.LossScale, got {loss_scale!r}")
    scale = loss_scale or (LossScale() if compute_dtype == "float16" else None)
    return Policy(param, compute_dtype, scale)


def cast_loss(be: Backend, policy: Policy, loss: Any, rebuild: Any) -> Any:
    """``loss(leaves, X, y)`` computed in the policy's compute dtype and returned in the
    parameters' dtype: the step's cast points."""
    compute, param = policy.compute_dtype, policy.param_dtype
    astype = be.astype

    def cast(leaves: tuple, X: Any, y: Any, scale: Any = None) -> Any:
        low = tuple([astype(p, compute) for p in leaves])
        y_low = astype(y, compute) if _floating(y) else y
        value = loss(rebuild(low), astype(X, compute), y_low)
        _check_not_promoted(value, y, policy)
        out = astype(value, param)
        return out if scale is None else out * scale

    return cast


def scaled_update(be: Backend, scale: LossScale, grads: tuple, state: tuple,
                  new_state: tuple, scaler: tuple) -> tuple[tuple, tuple]:  # fmt: skip
    """The dynamic rule (module docstring), branch-free: ``(state, scaler)`` after a step
    whose unscaled gradient is ``grads``; ``scaler`` is ``(scale, good steps, skipped)``."""
    s, good, skipped = scaler
    finite = None
    for g in grads:
        ok = be.min(be.astype(be.isfinite(g), "float32"))
        finite = ok if finite is None else finite * ok
    keep = finite > 0.5  # every gradient element finite
    chosen = tuple([be.where(keep, n, o) for n, o in zip(new_state, state, strict=True)])
    streak = good + 1.0
    grow = streak >= scale.interval
    s = be.where(keep, be.where(grow, s * scale.growth, s), s * scale.backoff)
    good = be.where(keep, be.where(grow, 0.0 * good, streak), 0.0 * good)
    return chosen, (s, good, skipped + (1.0 - finite))


#: Float dtypes by width: a loss wider than the parameters was not computed in the policy.
_WIDTH = {"bfloat16": 16, "float16": 16, "float32": 32, "float64": 64}


def _check_not_promoted(value: Any, y: Any, policy: Policy) -> None:
    """A loss that comes out wider than the parameters (NumPy: float16 minus an int64
    ``y`` is float64) trained in that width, not the policy's: an error, never a run
    labelled float16 that computed in float64."""
    got = _dtype_name(value)
    if _WIDTH.get(got, 0) > _WIDTH[policy.param_dtype]:
        cause = (f": y is {_dtype_name(y)}, which promotes {policy.compute_dtype}; give y "
                 f"a float dtype" if not _floating(y) else "")  # fmt: skip
        low = policy.compute_dtype
        raise ValueError(f"the loss came out in {got} under a {low} policy, so the step "
                         f"did not compute in {low}{cause}")  # fmt: skip


def _dtype_name(x: Any) -> str:
    return str(getattr(x, "dtype", "")).removeprefix("torch.")


def _floating(x: Any) -> bool:
    return _dtype_name(x).startswith(("float", "bfloat"))
