"""Framework-native reference trainers: what a PyTorch or JAX user would write by hand.

``native_fit`` trains the same linear model as ``vecx.fit`` with each framework's own
idioms: PyTorch ``nn.Linear`` with ``torch.optim.SGD`` and ``backward()``, JAX a
``jax.jit`` step built from ``jax.grad``. It reuses the trainer's loop
(``vecx.train.run_loop``): the same host data order, initial parameters, checkpoints and
clock, so the step is the only difference. The benchmark's ``train`` suite compares the
two implementations, and the tests check they end with the same parameters.

It lives under ``vecx/backends/`` because it imports frameworks (inside the functions,
so importing this module loads none).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np

from vecx.protocol import Backend
from vecx.train import Checkpoint, History, init_params, prepare, run_loop

__all__ = ["native_fit"]


def native_fit(
    be: Backend,
    X: Any,
    y: Any,
    *,
    lr: float,
    batch_size: int,
    epochs: int,
    seed: int = 0,
    replacement: bool = False,
    log_every: int = 200,
    preset: str | None = None,
    callback: Callable[[Checkpoint], None] | None = None,
) -> History:
    """``vecx.fit``'s experiment with a hand-written framework step (torch or jax only).

    Same arguments, validation, checkpoints and ``History`` as ``vecx.fit``; raises
    ``NotImplementedError`` for a backend with no native reference here.
    """
    builders = {"torch": _torch_parts, "jax": _jax_parts}
    if be.name not in builders:
        raise NotImplementedError(
            f"native_fit has framework-native reference trainers for "
            f"{' and '.join(builders)} only, not {be.name!r}; use vecx.fit for {be.spec}"
        )
    d, y, lr = prepare(
        be, X, y, lr=lr, batch_size=batch_size, epochs=epochs, seed=seed, log_every=log_every
    )
    step, state, evaluate, export, pure = builders[be.name](be, d, lr, seed)
    return run_loop(
        be, X, y, step=step, state=state, evaluate=evaluate, export=export, lr=lr,
        batch_size=batch_size, epochs=epochs, seed=seed, replacement=replacement,
        log_every=log_every, preset=preset, callback=callback, warmup=pure,
    )  # fmt: skip


Parts = tuple[Callable[..., Any], Any, Callable[..., Any], Callable[[Any], dict], bool]


def _torch_parts(be: Backend, d: int, lr: float, seed: int) -> Parts:
    """``nn.Linear`` + ``optim.SGD``; the state is the module, updated in place."""
    import torch
    import torch.nn.functional as F  # noqa: N812 - PyTorch's own convention

    init = init_params(be, d, seed)
    net = torch.nn.Linear(d, 1).to(device=init["w"].device, dtype=init["w"].dtype)
    with torch.no_grad():
        net.weight.copy_(init["w"].T)
        net.bias.copy_(init["b"])
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)

    def step(net: Any, X: Any, y: Any, idx: np.ndarray, lr: float) -> Any:
        rows = torch.as_tensor(idx, device=X.device)
        loss = F.mse_loss(net(X[rows]), y[rows]) / 2  # d2l's squared loss, batch mean
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return net

    def evaluate(net: Any, X: Any, y: Any) -> Any:
        with torch.no_grad():
            return F.mse_loss(net(X), y) / 2

    def export(net: Any) -> dict[str, np.ndarray]:
        return {"w": np.array(be.to_numpy(net.weight.T)), "b": np.array(be.to_numpy(net.bias))}

    return step, net, evaluate, export, False


@cache
def _jax_functions() -> tuple[Callable[..., Any], Callable[..., Any]]:
    """The jitted step and loss, built once per process so repeated runs do not recompile."""
    import jax
    import jax.numpy as jnp

    def loss(params: dict[str, Any], X: Any, y: Any) -> Any:
        return jnp.mean((X @ params["w"] + params["b"] - y) ** 2 / 2)

    @jax.jit
    def step(params: dict[str, Any], X: Any, y: Any, idx: Any, lr: float) -> Any:
        grads = jax.grad(loss)(params, X[idx], y[idx])
        return jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads)

    return step, jax.jit(loss)


def _jax_parts(be: Backend, d: int, lr: float, seed: int) -> Parts:
    """A ``jax.jit`` step (gather, ``jax.grad``, SGD via ``tree_map``); pure."""
    step, evaluate = _jax_functions()

    def export(params: dict[str, Any]) -> dict[str, np.ndarray]:
        return {k: np.array(be.to_numpy(v)) for k, v in params.items()}

    return step, init_params(be, d, seed), evaluate, export, True
