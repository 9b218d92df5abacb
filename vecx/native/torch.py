"""PyTorch's own way: ``nn`` modules, ``torch.optim.SGD`` and ``loss.backward()``.

Imported by ``vecx.native`` only when a native torch run is built; it imports torch then.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from vecx.training.executors import Problem
from vecx.training.optimizers import Momentum
from vecx.training.schedule import IndexBlock


@dataclass
class TorchProgram:
    """The state is the module itself (updated in place by the optimizer)."""

    state: Any
    step: Callable[[np.ndarray], None]
    evaluate_fn: Callable[[], tuple[Any, dict[str, Any]]]
    export_fn: Callable[[], Any]

    def segment(self, state: Any, block: IndexBlock) -> Any:
        step = self.step
        for run in block:
            for idx in run:
                step(idx)
        return state

    def evaluate(self, state: Any) -> tuple[Any, dict[str, Any]]:
        return self.evaluate_fn()

    def export(self, state: Any) -> Any:
        return self.export_fn()

    def warmup(self, state: Any) -> None:  # nothing to compile
        return None


def _module(torch: Any, task: str, params: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The task's ``nn`` module holding ``params``, and which module parameter each vecx
    parameter is (vecx keeps a weight as (in, out), ``nn.Linear`` as (out, in))."""
    nn = torch.nn
    first = next(iter(params.values()))
    if task == "mlp":
        net = nn.Sequential(nn.Linear(*params["W1"].shape), nn.ReLU(),
                            nn.Linear(*params["W2"].shape))  # fmt: skip
        net = net.to(device=first.device, dtype=first.dtype)
        slots = {"W1": net[0].weight, "b1": net[0].bias, "W2": net[2].weight,
                 "b2": net[2].bias}  # fmt: skip
    else:
        weight = "w" if task == "linreg" else "W"
        net = nn.Linear(*params[weight].shape).to(device=first.device, dtype=first.dtype)
        slots = {weight: net.weight, "b": net.bias}
    with torch.no_grad():
        for name, slot in slots.items():
            value = params[name]
            slot.copy_(value.T if value.ndim == 2 else value)
    return net, slots


def build(problem: Problem) -> TorchProgram:
    import torch
    import torch.nn.functional as F  # noqa: N812 - PyTorch's own convention

    task = problem.task.name
    X, y = problem.X, problem.y
    net, slots = _module(torch, task, problem.params)
    opt = problem.optimizer
    beta = opt.beta if isinstance(opt, Momentum) else 0.0
    if opt.name not in ("sgd", "momentum"):
        raise NotImplementedError(f"no native torch optimizer for {opt.describe()}")
    optimizer = torch.optim.SGD(net.parameters(), lr=problem.lr, momentum=beta)

    if task == "linreg":
        def loss_of(out: Any, target: Any) -> Any:
            return F.mse_loss(out, target) / 2  # d2l's squared loss, batch mean
    else:
        def loss_of(out: Any, target: Any) -> Any:
            return F.cross_entropy(out, target)  # target: class probabilities (one-hot)

    device = X.device

    def step(idx: np.ndarray) -> None:
        rows = torch.as_tensor(idx, device=device)
        loss = loss_of(net(X[rows]), y[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def evaluate() -> tuple[Any, dict[str, Any]]:
        with torch.no_grad():
            out = net(X)
            loss = loss_of(out, y)
            if task == "linreg":
                return loss, {}
            correct = (out.argmax(dim=1) == y.argmax(dim=1)).to(out.dtype).mean()
            return loss, {"accuracy": correct}

    def export() -> dict[str, np.ndarray]:
        out = {}
        for name, slot in slots.items():
            value = slot.detach()
            value = value.T if value.ndim == 2 else value
            out[name] = np.array(problem.be.to_numpy(value))
        return out

    return TorchProgram(net, step, evaluate, export)
