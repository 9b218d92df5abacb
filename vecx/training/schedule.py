"""Which minibatches each segment of a run trains on: host index blocks between checkpoints.

A run is cut into segments at its checkpoints (every ``log_every`` examples, and at the
end). A segment's ``block`` holds the row indices of its minibatches as a few 2-D arrays,
each a run of equally sized batches, shape (steps, batch): a full batch size, and the
smaller last batch of an epoch, are never mixed in one array. Without replacement every
array is a view of the epoch's permutation, so the schedule holds at most two epochs'
orders, as a hand-written loop holds one.

The indices are exactly those of ``vecx.data_iter`` with the same seed: one permutation
per epoch from the ``"order"`` host stream (or, with replacement, one uniform draw per
batch), so every backend and every executor sees the same batches in the same order.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Segment", "batch_sizes", "run_shapes", "segments"]

IndexBlock = tuple[np.ndarray, ...]


@dataclass(frozen=True)
class Segment:
    """The minibatches between two checkpoints, and where the run stands after them."""

    block: IndexBlock  # int64 arrays of shape (steps, batch)
    epoch: int  # the epoch the segment ends in (1-based)
    steps: int  # steps taken once it has run
    examples: int  # examples processed once it has run

    @property
    def size(self) -> int:
        """Minibatches in the segment."""
        return sum(len(run) for run in self.block)


def batch_sizes(n: int, batch_size: int) -> list[int]:
    """The distinct minibatch sizes of an epoch: the full size, and the last one's."""
    return sorted({batch_size, n % batch_size} - {0})


def segments(
    n: int,
    batch_size: int,
    epochs: int,
    log_every: int,
    rng: np.random.Generator,
    *,
    replacement: bool = False,
) -> Iterator[Segment]:
    """The segments of a run over ``n`` rows, drawn lazily from ``rng`` (``"order"`` stream).

    A checkpoint falls after the step where the example count reaches the next multiple
    of ``log_every`` (capped at the total), so the last segment ends at the end of the run.
    """
    total = n * epochs
    full, rest = divmod(n, batch_size)
    batches = full + (1 if rest else 0)
    examples = steps = 0
    next_log = min(log_every, total)
    pending: list[np.ndarray] = []
    for epoch in range(1, epochs + 1):
        order = None if replacement else rng.permutation(n).astype(np.int64, copy=False)
        pos = 0
        while pos < batches:
            size = batch_size if pos < full else rest
            group_end = full if pos < full else batches  # batches of this size
            needed = -(-(next_log - examples) // size)  # batches until the checkpoint
            take = min(max(needed, 1), group_end - pos)
            if order is not None:
                start = pos * batch_size
                pending.append(order[start : start + take * size].reshape(take, size))
            else:  # one draw per batch, as vecx.data.batch_indices makes them
                pending.append(np.stack([rng.integers(0, n, size, dtype=np.int64)
                                         for _ in range(take)]))  # fmt: skip
            pos += take
            steps += take
            examples += take * size
            if examples >= next_log:
                yield Segment(tuple(pending), epoch, steps, examples)
                pending = []
                next_log = min((examples // log_every + 1) * log_every, total)


def run_shapes(n: int, batch_size: int, epochs: int, log_every: int) -> frozenset[tuple[int, int]]:
    """The distinct ``(steps, batch)`` shapes of the index arrays `segments` yields for
    these settings (they do not depend on the order drawn): what an executor that
    compiles per shape (``mode="fused"``) compiles in its warm-up, before the clock."""
    return frozenset(
        run.shape for seg in segments(n, batch_size, epochs, log_every, _ShapesOnly(),
                                      replacement=True)  # fmt: skip
        for run in seg.block
    )


class _ShapesOnly:
    """A stand-in generator for `run_shapes`: draws cost nothing, and only shapes count."""

    def integers(self, low: int, high: int, size: int, dtype: Any = None) -> np.ndarray:
        return np.zeros(size, dtype=np.int64)
