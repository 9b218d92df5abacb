"""The results store: records streamed to disk as they finish, one document at the end.

Writing is crash-tolerant: `ResultWriter` appends each finished record as one line to
``<path>.partial.jsonl`` (fsynced) and only `ResultWriter.finish` produces ``<path>``,
atomically. A run killed half-way keeps every completed case; `ResultWriter.recover`
reads it. `load` reads and checks a finished file. Every record passes
`vecx.results.schema.check_record` on the way in and on the way out.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vecx.environment import machine_info
from vecx.results.schema import (
    HEADER_KEYS,
    SCHEMA_VERSION,
    check_record,
    check_settings,
    plain,
)


def _ensure_dir(directory: Path, target: Path) -> None:
    """Create ``directory`` or raise an OSError whose message names ``target`` and the cause."""
    for parent in (directory, *directory.parents):
        if parent.exists():
            if not parent.is_dir():
                raise NotADirectoryError(
                    f"cannot write results to {target}: {parent} is not a directory"
                )
            break
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise type(e)(
            f"cannot write results to {target}: cannot create {directory} ({e.strerror or e})"
        ) from e

class ResultWriter:
    """Streams result records to ``<path>.partial.jsonl`` and assembles ``path`` at the end.

    Each `add` is one ``write()`` of one complete line to a file opened with ``O_APPEND``,
    then ``fsync``: a killed run loses at most the line being written (which `recover`
    skips), and several processes may `add` to the same partial file at once, because
    POSIX appends of a single write are not interleaved on a local file system (records
    are small, well under a page). Network file systems may not honour ``O_APPEND``.

    ``append=False`` (the default) starts a new run and deletes a stale partial file left
    by an interrupted one; call `recover` first to keep it. Worker processes joining a
    run, or a resumed run, pass ``append=True``.
    """

    def __init__(self, path: str | os.PathLike[str], *, append: bool = False) -> None:
        self.path = Path(path)
        self.partial = self.partial_path(self.path)
        _ensure_dir(self.path.parent, self.path)
        try:  # fail now, not after the first ten-minute case
            fd = os.open(
                self.partial,
                os.O_WRONLY | os.O_CREAT | os.O_APPEND | (0 if append else os.O_TRUNC),
                0o644,
            )
            os.close(fd)
        except OSError as e:
            raise type(e)(
                f"cannot write results to {self.path}: cannot write "
                f"{self.partial} ({e.strerror or e})"
            ) from e

    @staticmethod
    def partial_path(path: str | os.PathLike[str]) -> Path:
        """Where records of the run that will end up in ``path`` are streamed."""
        path = Path(path)
        return path.with_name(path.name + ".partial.jsonl")

    def add(self, record: Mapping[str, Any]) -> None:
        """Append one record (as made by `result`) durably to the partial file."""
        rec = dict(record)
        check_record(rec, "record")
        line = (json.dumps(plain(rec, "record"), allow_nan=False) + "\n").encode("utf-8")
        fd = os.open(self.partial, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            written = os.write(fd, line)
            if written != len(line):
                raise OSError(f"short write to {self.partial}: {written} of {len(line)} bytes")
            os.fsync(fd)
        finally:
            os.close(fd)

    @classmethod
    def recover(cls, path: str | os.PathLike[str]) -> list[dict[str, Any]]:
        """Records streamed so far for ``path`` (e.g. after a crash), oldest first.

        A truncated last line (the process died mid-write) is skipped silently; any other
        unreadable line is skipped with a warning. Raises FileNotFoundError if there is no
        partial file.
        """
        partial = cls.partial_path(path)
        try:
            data = partial.read_bytes()
        except FileNotFoundError:
            raise FileNotFoundError(
                f"no partial results for {path}: {partial} does not exist"
            ) from None
        lines = data.split(b"\n")
        records = []
        for i, raw in enumerate(lines):
            if not raw.strip():
                continue
            last = i == len(lines) - 1  # no newline after it: the write was cut short
            try:
                rec = json.loads(raw)
                check_record(rec, "record")
            except (ValueError, UnicodeDecodeError) as e:
                if not last:
                    warnings.warn(f"{partial} line {i + 1} skipped: {e}", stacklevel=2)
                continue
            records.append(rec)
        return records

    def finish(self, header: Mapping[str, Any]) -> dict[str, Any]:
        """Write the whole document to ``path`` atomically, remove the partial file, return it.

        ``header`` supplies `HEADER_KEYS`; missing ones default to this vecx's version, now,
        `machine_info()`, ``{}`` and ``{}``. Records come from the partial file, so those
        added by other processes are included.
        """
        if "results" in header or header.get("schema", SCHEMA_VERSION) != SCHEMA_VERSION:
            raise ValueError("header must not set 'results' or a different 'schema'")
        doc: dict[str, Any] = {"schema": SCHEMA_VERSION}
        for key in HEADER_KEYS:
            if key in header:
                doc[key] = plain(header[key], key)
        doc.setdefault("vecx_version", _vecx_version())
        doc.setdefault("created", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
        doc.setdefault("machine", machine_info())
        doc.setdefault("backends", {})
        doc.setdefault("settings", {})
        doc.update({k: plain(v, k) for k, v in header.items() if k not in doc})
        try:
            doc["results"] = self.recover(self.path)
        except FileNotFoundError:
            doc["results"] = []
        _atomic_write(self.path, json.dumps(doc, indent=1, allow_nan=False) + "\n")
        self.partial.unlink(missing_ok=True)
        return doc


def _vecx_version() -> str:
    from vecx import __version__

    return __version__


def _atomic_write(path: Path, text: str) -> None:
    """Write via a temp file in the same directory and ``os.replace``: never a half file."""
    _ensure_dir(path.parent, path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise type(e)(f"cannot write results to {path} ({e.strerror or e})") from e
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- reading


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check a results file; errors name ``path`` and what is wrong with it.

    A partial file (``results.json.partial.jsonl``, what a run streams, kept when its end
    failed) reads as a document of its records, marked ``settings.partial``.
    """
    path = Path(path)
    suffix = ".partial.jsonl"
    if path.name.endswith(suffix) and path.is_file():
        final = path.with_name(path.name[: -len(suffix)])
        records = ResultWriter.recover(final)
        for i, rec in enumerate(records):
            try:
                check_record(rec, f"record {i + 1}")
            except ValueError as exc:
                raise ValueError(f"{path}: {exc}") from None
        return {"schema": SCHEMA_VERSION, "machine": {}, "backends": {},
                "settings": {"partial": True}, "results": records}  # fmt: skip
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"results file {path} does not exist") from None
    except IsADirectoryError:
        raise IsADirectoryError(f"{path} is a directory, not a results file") from None
    except OSError as e:  # permission denied, an I/O error
        raise type(e)(f"cannot read results file {path} ({e.strerror or e})") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{path} is not valid JSON: not UTF-8 text ({e.reason})") from None
    try:
        doc = json.loads(text, parse_constant=_no_constant)
    except _NonFinite as e:
        raise ValueError(f"{path} holds {e}, which is not a number in strict JSON (a "
                         "failure is recorded as an 'error')") from None  # fmt: skip
    except json.JSONDecodeError as e:
        raise ValueError(
            f"{path} is not valid JSON: line {e.lineno} column {e.colno} ({e.msg})"
        ) from None
    if not isinstance(doc, dict):
        raise ValueError(
            f"{path} is not a vecx results file: top level is a {type(doc).__name__}, not an object"
        )
    if "schema" not in doc:
        raise ValueError(f"{path} is not a vecx results file: no 'schema' key")
    if doc["schema"] != SCHEMA_VERSION:
        raise ValueError(
            f"{path} has unknown schema version {doc['schema']!r} "
            f"(this vecx reads {SCHEMA_VERSION})"
        )
    if not isinstance(doc.get("results"), list):
        raise ValueError(f"{path} is not a vecx results file: 'results' is not a list")
    for key in ("machine", "backends", "settings"):
        if key in doc and not isinstance(doc[key], dict):
            raise ValueError(f"{path}: {key!r} must be an object")
    try:
        check_settings(doc.get("settings", {}))
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    for i, rec in enumerate(doc["results"]):
        try:
            check_record(rec, f"results[{i}]")
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None
        _upgrade(rec)
    return doc


class _NonFinite(ValueError):
    pass


def _no_constant(name: str) -> Any:
    """``json.loads`` reads ``NaN`` and ``Infinity``; a results file has neither."""
    raise _NonFinite(name)


#: Keys that files of earlier development versions (same schema) kept in ``params``.
_LEGACY_PARAMS = ("measured_n", "extrapolated")


def _upgrade(rec: dict[str, Any]) -> None:
    """Move `_LEGACY_PARAMS` out of an older file's ``params`` into record keys."""
    params = rec["params"]
    for key in _LEGACY_PARAMS:
        if key in params:
            rec.setdefault(key, params.pop(key))

