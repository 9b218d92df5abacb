"""The worker protocol: one `Event` type, one JSON object per line on the worker's pipe.

Kinds, in the order a worker sends them:

* ``backend``: the backend is built (``info``: ``Backend.info()``, ``settings``: the
  worker's runtime settings, ``load``: load averages);
* ``unavailable``: the backend cannot run here (``error``: why); nothing else follows;
* ``start`` / ``done``: a case began / ended (``suite``, ``case``, ``params``; ``done``
  also ``text``, its one-line summary; the record itself is in the results stream);
* ``end``: every case ran (``load``);
* ``fatal``: the worker cannot go on (``error``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

KINDS = ("backend", "unavailable", "start", "done", "end", "fatal")


@dataclass(frozen=True)
class Event:
    """One message from a worker to the engine."""

    kind: str
    suite: str | None = None
    case: str | None = None
    params: dict[str, Any] | None = None
    text: str | None = None
    error: str | None = None
    info: dict[str, Any] | None = None
    settings: dict[str, Any] | None = None
    load: list[float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def encode(self) -> str:
        """One line of JSON (with its newline), the fields that are set only."""
        body = {k: v for k, v in asdict(self).items() if v not in (None, {})}
        return json.dumps(body, default=str, separators=(",", ":")) + "\n"

    @classmethod
    def decode(cls, line: str) -> Event | None:
        """The event on ``line``, or ``None`` for anything that is not one (a framework
        that wrote to the pipe despite the redirection must not kill the engine)."""
        try:
            body = json.loads(line)
        except ValueError:
            return None
        if not isinstance(body, Mapping) or body.get("kind") not in KINDS:
            return None
        known = {k: body[k] for k in cls.__dataclass_fields__ if k in body}
        try:
            return cls(**known)
        except TypeError:
            return None

    @property
    def key(self) -> str:
        """The case this event is about, as the engine tracks it."""
        return case_id(self.suite or "", self.case or "", self.params or {})


def case_id(suite: str, case: str, params: Mapping[str, Any]) -> str:
    """The planned case an event is about, spelled as `vecx.suites.Case.key` spells it."""
    from vecx.suites import case_key

    return case_key(suite, case, params)
