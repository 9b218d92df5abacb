"""``vecx train``: run one of the trainer's presets (``vecx.PRESETS``) on one backend.

Prints the whole-data loss (and accuracy, for a classifier) at each checkpoint (plain
lines, or a progress bar on a terminal), then the final loss and the training seconds
per epoch. ``--json`` writes
``History.to_dict()`` and ``--plot`` the loss curve; both paths are checked before
training starts, and the JSON is written atomically after it ends, so a failed run
never leaves a half-written file. A run stopped by Ctrl-C or by divergence still
writes the checkpoints it reached, marked ``"interrupted": true`` or
``"diverged": message``, then exits as before (130, or 1 with the one-line error).
Errors are raised as ``ValueError``/``OSError``/``VecxError`` and become one line on
stderr in ``vecx.cli``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any


def add_parser(sub: argparse._SubParsersAction) -> None:
    from vecx.protocol import MODES
    from vecx.training import OPTIMIZERS, PRESETS

    p = sub.add_parser(
        "train",
        help="train a preset model by minibatch SGD on one backend",
        description="Train one of the trainer's presets by minibatch SGD on one backend. "
        "Presets: " + "; ".join(f"{name} ({pr.description})" for name, pr in PRESETS.items()),
    )
    p.add_argument("--backend", required=True, metavar="SPEC",
                   help="backend spec, e.g. numpy, torch:cuda, jax (see `vecx info`)")
    p.add_argument("--preset", required=True, metavar="NAME",
                   help=f"one of: {', '.join(PRESETS)}")
    p.add_argument("--lr", type=float, help="learning rate (default: the preset's)")
    p.add_argument("--batch-size", type=int, help="minibatch size (default: the preset's)")
    p.add_argument("--epochs", type=int, help="passes over the data (default: the preset's)")
    p.add_argument("--optimizer", choices=list(OPTIMIZERS), type=str.lower,
                   help="sgd or momentum (beta 0.9) (default: the preset's, sgd)")
    p.add_argument("--mode", choices=MODES, type=str.lower,
                   help="eager (one uncompiled call per step), jit (one compiled call per "
                   "step) or fused (one compiled call per segment between checkpoints); "
                   "default: jit where the backend compiles (jax), else eager")
    p.add_argument("--compute-dtype", choices=("float32", "bfloat16", "float16"),
                   type=str.lower,
                   help="mixed precision: the step computed in bfloat16 or float16 (float16 "
                   "with dynamic loss scaling), the parameters and update in float32 "
                   "(default: float32 throughout)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="data-parallel SGD on N workers: torch.distributed ranks (gloo on "
                   "the CPU, NCCL on CUDA; under torchrun, its ranks) or a mesh of N jax "
                   "devices (default: one)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the data, initial parameters and batch order (default 0)")
    p.add_argument("--log-every", type=int, default=200, metavar="N",
                   help="evaluate the whole-data loss every N examples (default 200)")
    p.add_argument("--json", metavar="FILE", help="write the training history as JSON")
    p.add_argument("--plot", metavar="FILE",
                   help="plot loss against training time (.png, .svg or .pdf)")
    p.add_argument("--quiet", action="store_true",
                   help="print only the final line (no per-checkpoint output)")
    p.set_defaults(func=run)


def _check_numbers(args: argparse.Namespace, preset: Any) -> tuple[float, int, int]:
    """Every number the run takes, checked before anything is printed or built, in
    messages that name the flag (``--epochs must be >= 1, got 0``); returns the
    effective (lr, batch size, epochs)."""
    from vecx.data import check_int

    lr = preset.lr if args.lr is None else args.lr
    if not (math.isfinite(lr) and lr > 0):  # nan and inf too
        raise ValueError(f"--lr must be a finite number > 0, got {lr}")
    bs = preset.batch_size if args.batch_size is None else args.batch_size
    check_int("--batch-size", bs, 1, preset.examples)
    epochs = preset.epochs if args.epochs is None else args.epochs
    check_int("--epochs", epochs, 1)
    check_int("--seed", args.seed, 0)
    if args.workers is not None:
        check_int("--workers", args.workers, 1)
    check_int("--log-every", args.log_every, 1)
    return lr, bs, epochs


def run(args: argparse.Namespace) -> int:
    import vecx
    from vecx.training import PRESETS
    from vecx.training.executors import check_mode
    from vecx.training.precision import get_policy

    if args.preset not in PRESETS:
        raise ValueError(f"unknown preset {args.preset!r}; choose one of {', '.join(PRESETS)}")
    preset = PRESETS[args.preset]
    lr, bs, epochs = _check_numbers(args, preset)
    _check_plot_path(args.plot)
    reserved = _reserve(args.json) if args.json and _leader() else None
    # SIGTERM stops a run as Ctrl-C does: the history so far is written, no temp file left
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        be = vecx.backend(args.backend)
        optimizer = args.optimizer or preset.optimizer
        mode = check_mode(be, args.mode)  # an unsupported mode: one line, before anything
        policy = get_policy(be, args.compute_dtype)  # likewise an unsupported dtype
        workers = args.workers or 1
        leader = _leader()
        if not args.quiet and leader:
            on = f", {workers} workers" if workers > 1 else ""
            print(f"training {args.preset} on {be.spec}{on}: lr {lr:g}, batch {bs}, "
                  f"{epochs} epoch(s), {optimizer}, {mode}, {policy.describe()}, "
                  f"seed {args.seed}")
        try:
            with _Progress(enabled=not args.quiet and leader) as progress:
                history = vecx.train(
                    be, args.preset, lr=args.lr, batch_size=args.batch_size,
                    epochs=args.epochs, seed=args.seed, log_every=args.log_every,
                    optimizer=optimizer, callback=progress.update, mode=args.mode,
                    compute_dtype=args.compute_dtype, workers=args.workers,
                )  # fmt: skip
        except (KeyboardInterrupt, vecx.TrainingDiverged, vecx.WorkerFailed) as exc:
            partial = getattr(exc, "history", None)
            if partial is not None and (args.json or args.plot):
                _save_partial(exc, partial, args, reserved)
                reserved = None
            raise
        if history is None:  # a torchrun rank other than 0: rank 0 reports
            return 0
        doc = history.to_dict()
        if reserved is not None:
            _write_json(reserved, Path(args.json), doc)
            reserved = None
    finally:
        signal.signal(signal.SIGTERM, previous)
        if reserved is not None:
            reserved.unlink(missing_ok=True)
    as_in_d2l = (lr, bs, epochs, optimizer) == (preset.lr, preset.batch_size, preset.epochs,
                                                preset.optimizer)  # fmt: skip
    reference = (f" (d2l: {preset.d2l_loss:g})"
                 if preset.d2l_loss is not None and as_in_d2l else "")  # fmt: skip
    accuracy = f", accuracy {100 * history.accuracy:.2f}%" if history.accuracy is not None else ""
    compiled = (f", compiled in {history.compile_s:.3g} s before the clock"
                if history.compile_s else "")  # fmt: skip
    if history.compute_dtype != be.dtype:
        compiled += f", {history.compute_dtype} compute"
    if history.skipped_steps:
        compiled += f", {history.skipped_steps} step(s) skipped by loss scaling"
    if history.workers > 1:
        threads = (f", {history.threads_per_worker} thread(s) each"
                   if history.threads_per_worker else "")  # fmt: skip
        compiled += f", {history.workers} workers over {history.engine}{threads}"
    print(f"loss {history.loss:.6g}{reference}{accuracy}, "
          f"{history.epoch_time:.4g} sec/epoch on {be.spec} ({history.mode}{compiled})")
    if args.plot:
        from vecx.plots import plot_train_history

        plot_train_history(doc, args.plot)
    return 0


def _save_partial(
    exc: BaseException, history: Any, args: argparse.Namespace, reserved: Path | None
) -> None:
    """Write an interrupted or diverged run's checkpoints to --json and --plot.

    The JSON is marked (``"interrupted": true`` or ``"diverged": message``); the plot
    needs at least one checkpoint. The run's own error stays the message: a failure to
    write is added to it, in the same line.
    """

    doc = history.to_dict()
    written = []
    try:
        if reserved is not None:
            _write_json(reserved, Path(args.json), doc)
            written.append(args.json)
        if args.plot and doc["losses"]:
            from vecx.plots import plot_train_history

            written.append(str(plot_train_history(doc, args.plot)))
    except (OSError, ValueError) as err:
        note = f"the history so far was not written: {err}"
        if isinstance(exc, KeyboardInterrupt):
            raise KeyboardInterrupt(note) from exc
        raise type(exc)(f"{exc}; {note}", history) from exc
    unplotted = bool(args.plot) and not doc["losses"]
    if (written or unplotted) and not args.quiet:
        what = ("interrupted" if history.interrupted else "diverged" if history.diverged
                else "stopped")  # fmt: skip
        where = f"the history so far is in {' and '.join(written)}" if written else ""
        no_plot = f"no plot in {args.plot}: no checkpoint to draw" if unplotted else ""
        print(f"{what} after {len(doc['losses'])} checkpoint(s): "
              + "; ".join(x for x in (where, no_plot) if x), flush=True)


def _check_plot_path(path: str | None) -> None:
    """Fail before training on a plot path that cannot be written."""
    if not path:
        return
    import vecx.plots

    formats = getattr(vecx.plots, "FORMATS", (".png", ".svg", ".pdf"))
    if Path(path).suffix.lower() not in formats:
        raise ValueError(f"--plot {path}: the suffix must be one of {', '.join(formats)}")
    parent = Path(path).parent
    if not parent.is_dir():
        from vecx.cli import file_in_the_way

        blocker = file_in_the_way(parent)
        if blocker is not None:
            raise NotADirectoryError(f"--plot {path}: {blocker} is not a directory")
        raise FileNotFoundError(f"--plot {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise PermissionError(f"--plot {path}: folder {parent} is not writable")


def _leader() -> bool:
    """Whether this process reports: always, except a torchrun rank other than 0."""
    from vecx.training.parallel import launched_by_torchrun

    started = launched_by_torchrun()
    return started is None or started[0] == 0


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _reserve(path: str) -> Path:
    """A temporary file beside ``path``: proves the folder is writable before training."""
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(f"--json {path} is a folder, not a file")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise type(exc)(
            f"--json {path}: cannot write in folder {target.parent}: {exc.strerror}"
        ) from None
    os.close(fd)
    return Path(tmp)


def _write_json(tmp: Path, target: Path, doc: dict[str, Any]) -> None:
    """Write ``doc`` to ``tmp`` then rename it onto ``target`` (atomic on POSIX)."""
    text = json.dumps(doc, indent=2, allow_nan=False)  # never write NaN into JSON
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, target)


class _Progress:
    """Checkpoint output through the progress display ``vecx bench`` uses: a bar on a
    terminal (redrawn from the checkpoint callback, which runs while the clock is
    stopped: no refresh thread competes with the training), plain lines otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Any = None

    def __enter__(self) -> _Progress:
        return self

    def update(self, cp: Any) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from vecx.engine.progress import Progress

            self.bar = Progress(cp.total_examples, stream=sys.stdout, stamp=False,
                                status="loss {task.fields[status]}")  # fmt: skip
            self.bar.begin("examples")
        text = (f"  epoch {cp.epoch}  examples {cp.examples}/{cp.total_examples}  "
                f"loss {cp.loss:.6g}{_accuracy_text(cp)}  training time {cp.time:.3g} s")
        self.bar.advance(completed=cp.examples, status=f"{cp.loss:.6g}{_accuracy_text(cp)}",
                         text=None if self.bar.live else text)  # fmt: skip

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


def _accuracy_text(cp: Any) -> str:
    value = cp.metrics.get("accuracy")
    return "" if value is None else f"  accuracy {100 * value:.2f}%"
