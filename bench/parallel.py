"""What bounds data-parallel SGD on this machine, measured side by side in one run.

The ``parallel`` suite measures how ``fit(workers=N)`` scales; this script measures the
limits under it, so that a scaling efficiency below 1 can be taken apart:

1. loopback TCP: the round trip of 8 bytes between two processes (what every gloo message
   pays at least);
2. a bare gloo all-reduce of the large task's gradient (257 floats), 2 ranks, 1 thread;
3. the large task's step without any communication: 2 processes each gathering and
   differentiating half the batch at the same time, against 1 process doing the whole
   batch (memory bandwidth and caches shared by the cores: the best any engine could do);
4. the same with a gloo all-reduce per step (what data-parallel SGD does);
5. ``vecx.fit`` itself on the large task: 1 worker against 2 (strong scaling).

Everything at one thread per process, the 2^20 x 256 float32 linear regression, batch
8192 (4096 per worker) unless ``--batch`` says otherwise.

    PYTHONPATH=. python bench/parallel.py          # ~2 min on 2 cores
    PYTHONPATH=. python bench/parallel.py --batch 65536 --pin
    PYTHONPATH=. python bench/parallel.py --quick  # 2^18 rows, fewer steps
"""

from __future__ import annotations

import argparse
import datetime
import multiprocessing as mp
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import numpy as np  # noqa: E402

FEATURES, BATCH = 256, 8192


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _echo(port: int) -> None:
    with socket.create_server(("127.0.0.1", port)) as server:
        conn, _ = server.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while data := conn.recv(8):
            conn.sendall(data)


def tcp_round_trip(rounds: int) -> float:
    """Seconds per 8-byte round trip over loopback TCP."""
    port = _free_port()
    echo = mp.get_context("spawn").Process(target=_echo, args=(port,))
    echo.start()
    for _ in range(100):
        try:
            conn = socket.create_connection(("127.0.0.1", port))
            break
        except ConnectionRefusedError:
            time.sleep(0.05)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for _ in range(100):
        conn.sendall(b"x" * 8)
        conn.recv(8)
    start = time.perf_counter()
    for _ in range(rounds):
        conn.sendall(b"x" * 8)
        conn.recv(8)
    took = (time.perf_counter() - start) / rounds
    conn.close()
    echo.join()
    return took


def _rank(rank: int, world: int, port: int, rows: int, batch: int, steps: int, comm: str,
          out: Any, pin: bool = False) -> None:  # fmt: skip
    """One process: ``steps`` steps of the large task's gradient on ``batch`` rows, with an
    all-reduce per step (``comm="reduce"``), without (``"none"``), or only the all-reduce
    (``"only"``); puts (wall s/step, CPU s/step) on ``out``."""
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    if pin:
        os.sched_setaffinity(0, {rank % (os.cpu_count() or 1)})
    timeout = datetime.timedelta(seconds=60)
    if world > 1:
        store = dist.TCPStore("127.0.0.1", port, world, is_master=rank == 0,
                              wait_for_workers=False, timeout=timeout)  # fmt: skip
        dist.init_process_group("gloo", store=store, rank=rank, world_size=world,
                                timeout=timeout)  # fmt: skip
    gen = torch.Generator().manual_seed(rank)
    X = torch.randn(rows, FEATURES, generator=gen)
    y = torch.randn(rows, 1, generator=gen)
    w = torch.zeros(FEATURES + 1, 1)
    order = torch.randperm(rows, generator=gen)
    grad = torch.zeros(FEATURES + 1, 1)

    def step(i: int) -> None:
        if comm != "only":
            start = (i * batch) % (rows - batch)
            idx = order[start : start + batch]
            Xb, yb = torch.index_select(X, 0, idx), torch.index_select(y, 0, idx)
            r = Xb @ w[:-1] + w[-1] - yb
            grad[:-1] = Xb.T @ r / batch
            grad[-1] = r.mean()
        if comm != "none" and world > 1:
            dist.all_reduce(grad)

    for i in range(5):
        step(i)
    if world > 1:
        dist.barrier()
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(steps):
        step(i)
    out.put(((time.perf_counter() - wall) / steps, (time.process_time() - cpu) / steps))
    if world > 1:
        dist.destroy_process_group()


def ranks(world: int, rows: int, batch: int, steps: int, comm: str,
          pin: bool = False) -> tuple[float, float]:  # fmt: skip
    """The slowest rank's (wall, CPU) seconds per step."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_rank, args=(r, world, port, rows, batch, steps, comm, out,
                                                     pin))
             for r in range(world)]  # fmt: skip
    for p in procs:
        p.start()
    got = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    return max(got)


def vecx_fit(rows: int, epochs: int, batch: int) -> tuple[float, float, float, float]:
    """``vecx.fit`` on the large task: (1 worker s/epoch, 2 workers s/epoch, losses)."""
    import vecx
    from vecx.protocol import set_threads

    be = vecx.backend("torch")
    set_threads(be, 1)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((rows, FEATURES), dtype=np.float32)
    y = X @ (rng.standard_normal((FEATURES, 1), dtype=np.float32) / 16)
    X, y = be.asarray(X), be.asarray(y.astype(np.float32))
    run = dict(lr=0.1, batch_size=batch, epochs=epochs, log_every=rows)
    one = vecx.fit(be, X, y, **run)
    set_threads(be, 1)
    two = vecx.fit(be, X, y, workers=2, **run)
    return one.epoch_time, two.epoch_time, one.loss, two.loss


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2^18 rows, fewer steps")
    parser.add_argument("--batch", type=int, default=BATCH, help=f"global batch ({BATCH})")
    parser.add_argument("--pin", action="store_true",
                        help="also run step 4 with each rank pinned to its own CPU")
    args = parser.parse_args(argv)
    batch = args.batch
    rows = 1 << (18 if args.quick else 20)
    steps = 50 if args.quick else 200
    print(f"load average {os.getloadavg()[0]:.2f}; {os.cpu_count()} CPUs; one thread per "
          f"process; {rows} x {FEATURES} float32, batch {batch}")
    rtt = tcp_round_trip(500 if args.quick else 2000)
    print(f"1. loopback TCP round trip (8 bytes): {1e6 * rtt:.0f} us")
    reduce_only, _ = ranks(2, 4096, BATCH // 2, steps, "only")
    print(f"2. gloo all-reduce of {FEATURES + 1} floats, 2 ranks: {1e3 * reduce_only:.2f} ms")
    whole, _ = ranks(1, rows, batch, steps, "none")
    halves, _ = ranks(2, rows, batch // 2, steps, "none")
    print(f"3. a step without communication: 1 process x {batch} rows {1e3 * whole:.2f} ms; "
          f"2 processes x {batch // 2} rows at once {1e3 * halves:.2f} ms: efficiency "
          f"{whole / (2 * halves):.2f} (the ceiling of any engine here)")
    with_reduce, cpu = ranks(2, rows, batch // 2, steps, "reduce")
    print(f"4. the same with a gloo all-reduce per step: {1e3 * with_reduce:.2f} ms "
          f"({1e3 * cpu:.2f} ms CPU): efficiency {whole / (2 * with_reduce):.2f}")
    if args.pin:
        pinned, cpu = ranks(2, rows, batch // 2, steps, "reduce", pin=True)
        print(f"4b. the same, each rank pinned to its own CPU: {1e3 * pinned:.2f} ms "
              f"({1e3 * cpu:.2f} ms CPU): efficiency {whole / (2 * pinned):.2f}")
    one, two, loss1, loss2 = vecx_fit(rows, 1 if args.quick else 2, batch)
    print(f"5. vecx.fit, s/epoch: 1 worker {one:.3f}, 2 workers {two:.3f}: strong-scaling "
          f"efficiency {one / (2 * two):.2f} (losses {loss1:.6g}, {loss2:.6g})")
    print(f"load average {os.getloadavg()[0]:.2f} (end)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
