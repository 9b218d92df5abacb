"""Framework-native reference trainers: what a PyTorch or JAX user would write by hand.

For each built-in task (``linreg``, ``softmax``, ``mlp``) there is the framework's own
idiom: PyTorch ``nn`` modules with ``torch.optim.SGD`` and ``loss.backward()``, JAX a
``jax.jit`` step built from ``jax.grad`` and ``jax.tree_util``. They are executors of the
trainer (``vecx.fit(..., executor="native")``), so they share its data, initial
parameters, minibatch order, checkpoints and clock: the step is the only difference. The
benchmark's ``train`` suite compares them with vecx's own executor, and the tests check
that both end with the same parameters.

This package and ``vecx/backends/`` are the only places that import a framework, and
only inside functions, so importing it loads none.
"""

from __future__ import annotations

import importlib

from vecx.training.executors import Problem, Program

__all__ = ["FRAMEWORKS", "NativeExecutor"]

#: Backends with native reference trainers, and the module that builds them.
FRAMEWORKS = {"torch": "vecx.native.torch", "jax": "vecx.native.jax"}


class NativeExecutor:
    """The framework-native step of a built-in task (torch and jax)."""

    name = "native"

    def build(self, problem: Problem) -> Program:
        be = problem.be
        if be.name not in FRAMEWORKS:
            raise NotImplementedError(
                f"native reference trainers exist for {' and '.join(FRAMEWORKS)} only, not "
                f"{be.name!r}; use vecx's own executor for {be.spec}"
            )
        task = problem.task
        if task is None:
            raise NotImplementedError(
                "native reference trainers exist for the built-in tasks only (linreg, "
                "softmax, mlp), not for a loss of your own"
            )
        return importlib.import_module(FRAMEWORKS[be.name]).build(problem)

