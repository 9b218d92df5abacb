"""JAX's own way: a ``jax.jit`` step built from ``jax.grad``, updates by ``jax.tree_util``.

Imported by ``vecx.native`` only when a native JAX run is built; it imports jax then.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from vecx.training.executors import Problem
from vecx.training.optimizers import Momentum
from vecx.training.schedule import IndexBlock, batch_sizes


@cache
def _functions(task: str, beta: float) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """The jitted step and evaluation, built once per process so repeated runs do not
    recompile. The state is ``(params, velocity)``; plain SGD keeps ``velocity`` None."""
    import jax
    import jax.numpy as jnp

    def logits(params: dict[str, Any], X: Any) -> Any:
        if task == "mlp":
            hidden = jax.nn.relu(X @ params["W1"] + params["b1"])
            return hidden @ params["W2"] + params["b2"]
        return X @ params["W"] + params["b"]

    def loss(params: dict[str, Any], X: Any, y: Any) -> Any:
        if task == "linreg":
            return jnp.mean((X @ params["w"] + params["b"] - y) ** 2 / 2)
        return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(logits(params, X)), axis=1))

    @jax.jit
    def step(state: Any, X: Any, y: Any, idx: Any, lr: Any) -> Any:
        params, velocity = state
        grads = jax.grad(loss)(params, X[idx], y[idx])
        if velocity is None:
            return jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads), None
        velocity = jax.tree_util.tree_map(lambda v, g: beta * v + g, velocity, grads)
        return jax.tree_util.tree_map(lambda p, v: p - lr * v, params, velocity), velocity

    @jax.jit
    def evaluate(state: Any, X: Any, y: Any) -> Any:
        params = state[0]
        if task == "linreg":
            return loss(params, X, y), {}
        z = logits(params, X)
        correct = jnp.mean(jnp.argmax(z, axis=1) == jnp.argmax(y, axis=1))
        return loss(params, X, y), {"accuracy": correct}

    return step, evaluate


@dataclass
class JaxProgram:
    state: Any
    problem: Problem
    step: Callable[..., Any]
    evaluate_fn: Callable[..., Any]

    def segment(self, state: Any, block: IndexBlock) -> Any:
        step, X, y, lr = self.step, self.problem.X, self.problem.y, self.problem.lr
        try:
            for run in block:
                for idx in run:
                    state = step(state, X, y, idx, lr)
        except KeyboardInterrupt as stop:  # where it stopped (see Program)
            stop.state = state  # type: ignore[attr-defined]
            raise
        return state

    def evaluate(self, state: Any) -> tuple[Any, dict[str, Any]]:
        return self.evaluate_fn(state, self.problem.X, self.problem.y)

    def export(self, state: Any) -> Any:
        # in the task's key order (jax.jit hands dicts back with their keys sorted)
        params = state[0]
        return {k: np.array(self.problem.be.to_numpy(params[k])) for k in self.problem.params}

    def warmup(self, state: Any) -> None:
        """Compile before the clock starts (the step is pure: its result is dropped)."""
        n = int(self.problem.X.shape[0])
        for size in batch_sizes(n, self.problem.batch_size):
            idx = np.arange(size, dtype=np.int64)
            self.problem.be.sync(self.step(state, self.problem.X, self.problem.y, idx,
                                           self.problem.lr))  # fmt: skip


def build(problem: Problem) -> JaxProgram:
    opt = problem.optimizer
    if opt.name not in ("sgd", "momentum"):
        raise NotImplementedError(f"no native jax optimizer for {opt.describe()}")
    beta = opt.beta if isinstance(opt, Momentum) else 0.0
    step, evaluate = _functions(problem.task.name, beta)
    params = dict(problem.params)
    velocity = None
    if isinstance(opt, Momentum):
        import jax

        velocity = jax.tree_util.tree_map(lambda p: p * 0, params)
    return JaxProgram((params, velocity), problem, step, evaluate)
