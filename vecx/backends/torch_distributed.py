"""torch.distributed for ``fit(workers=N)`` on torch: one process group per run.

gloo on the CPU, NCCL on CUDA. Started by vecx on one machine, rank 0 (the caller's
process) hosts the rendezvous, a ``TCPStore`` on 127.0.0.1 (on ``MASTER_PORT`` if set,
else a free port the system picks; a port in use is retried on a free one), and the
other ranks connect to it. Started by ``torchrun``, every rank joins through the
environment it sets (``env://``). Imports torch only when a group is made.
"""

from __future__ import annotations

import datetime
import os
import time
from typing import Any

__all__ = ["ProcessGroup"]

_runs = 0  # groups made in this process (the same count on every rank)


class ProcessGroup:
    """A run's ranks: ``reduce`` sums gradients over them (one all-reduce of one flat
    buffer per step: each call pays the collective's latency, whatever its size up to
    kilobytes), ``share`` sends a host object from rank 0 to the others.

    Made in two steps, so that rank 0 can start the other ranks between them:
    construction binds the rendezvous (``address`` is where the others connect),
    ``join()`` waits for every rank.
    """

    processes = True

    def __init__(self, workers: int, rank: int, *, cuda: bool, address: str | None,
                 timeout: float) -> None:  # fmt: skip
        import torch
        import torch.distributed as dist

        if not dist.is_available():
            raise RuntimeError("this build of torch has no torch.distributed")
        if dist.is_initialized():
            raise RuntimeError("a torch.distributed process group is already running in this "
                               "process: fit(workers=N) makes its own, one run at a "
                               "time")  # fmt: skip
        self.torch, self.dist = torch, dist
        self.workers, self.rank = workers, rank
        self._made = False
        self.engine = "nccl" if cuda else "gloo"
        self._timeout = datetime.timedelta(seconds=timeout)
        self._store: Any = None
        self._run = 0  # which group of this process, once joined
        if address == "env://":
            self.address = address
        elif rank == 0:
            self._store = self._host(_port(os.environ.get("MASTER_PORT", "0")))
            self.address = f"127.0.0.1:{self._store.port}"
        else:
            if address is None:
                raise ValueError(f"rank {rank} needs the address of rank 0's rendezvous")
            host, _, port = address.rpartition(":")
            self._store = dist.TCPStore(host, int(port), workers, is_master=False,
                                        timeout=self._timeout)  # fmt: skip
            self.address = address

    def _host(self, port: int) -> Any:
        """The rendezvous on ``port``; on a free port if that one is taken (or 0)."""
        make = self.dist.TCPStore
        try:
            return make("127.0.0.1", port, self.workers, is_master=True, wait_for_workers=False,
                        timeout=self._timeout)  # fmt: skip
        except RuntimeError as exc:  # DistNetworkError: EADDRINUSE
            if port == 0 or "in use" not in str(exc):
                raise
        return make("127.0.0.1", 0, self.workers, is_master=True, wait_for_workers=False,
                    timeout=self._timeout)  # fmt: skip

    def join(self) -> ProcessGroup:
        """Wait for every rank (``timeout`` seconds at most) and make the group."""
        dist = self.dist
        _reset_group_count(dist)
        try:
            if self.address == "env://":
                dist.init_process_group(self.engine, init_method="env://", rank=self.rank,
                                        world_size=self.workers, timeout=self._timeout)  # fmt: skip
            else:
                dist.init_process_group(self.engine, store=self._store, rank=self.rank,
                                        world_size=self.workers, timeout=self._timeout)  # fmt: skip
        except BaseException:
            _reset_group_count(dist)  # a failed init counts a group: the next would not meet
            raise
        self._made = True
        global _runs
        _runs += 1  # every rank makes the same groups in the same order: a key per run
        self._run = _runs
        if self.address == "env://":  # a store of our own, on torchrun's rendezvous
            self._store = dist.TCPStore(os.environ["MASTER_ADDR"],
                                        _port(os.environ["MASTER_PORT"]), is_master=False,
                                        timeout=self._timeout)  # fmt: skip
        return self

    def announce(self, message: str) -> None:
        """Tell the other ranks why this one stops (a rank that raises, under torchrun,
        where no parent collects its error): `failure` on rank 0 names it."""
        if self._store is not None:
            self._store.set(f"vecx/{self._run}/failed/{self.rank}", message)

    def failure(self, wait: float) -> str | None:
        """A rank's `announce`, waiting up to ``wait`` seconds for one; None if none did
        (a rank killed says nothing)."""
        if self._store is None:
            return None
        keys = [f"vecx/{self._run}/failed/{r}" for r in range(self.workers) if r != self.rank]
        deadline = time.monotonic() + wait
        while True:
            for key in keys:
                if self._store.check([key]):
                    return f"rank {key.rsplit('/', 1)[1]} failed: {self._store.get(key).decode()}"
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)

    def place(self, x: Any) -> Any:
        return x  # every rank holds its own copy

    def batch(self, index: Any, X: Any, y: Any, idx: Any) -> tuple[Any, Any, float]:
        """This rank's contiguous part of the minibatch ``idx`` and its share of the rows:
        the gradient of its mean times the share, summed over the ranks, is the gradient
        of the whole minibatch's mean (its sum divided by the global batch size)."""
        n = len(idx)
        lo, hi = n * self.rank // self.workers, n * (self.rank + 1) // self.workers
        part = idx[lo:hi]
        return index(X, part), index(y, part), (hi - lo) / n

    def reduce(self, grads: tuple) -> tuple:
        """The sum of ``grads`` over the ranks, every rank getting the same numbers."""
        torch = self.torch
        flat = torch.cat([g.reshape(-1) for g in grads])
        self.dist.all_reduce(flat)
        out, start = [], 0
        for g in grads:
            size = g.numel()
            out.append(flat[start : start + size].view_as(g))
            start += size
        return tuple(out)

    def share(self, obj: Any = None) -> Any:
        """Rank 0's ``obj`` on every rank (pickled: for a segment's index block)."""
        box = [obj]
        self.dist.broadcast_object_list(box, src=0)
        return box[0]

    def close(self) -> None:
        """Destroy the group this object made (never a group the caller made)."""
        if self._made and self.dist.is_initialized():
            self.dist.destroy_process_group()
        self._made = False
        self._store = None


def _port(text: str) -> int:
    """``MASTER_PORT``'s value as a port number, or a ValueError naming it."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise ValueError(f"MASTER_PORT must be a port number (0 to 65535), got {text!r}")
    return port


def _reset_group_count(dist: Any) -> None:
    """With no group running, torch's count of groups back to 0: a failed
    ``init_process_group`` leaves it at 1, and every later rendezvous would then wait under
    another key than the ranks it starts."""
    world = getattr(getattr(dist, "distributed_c10d", None), "_world", None)
    if world is not None and not dist.is_initialized() and hasattr(world, "group_count"):
        world.group_count = 0
