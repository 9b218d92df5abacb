"""``vecx info``: which backends and devices this machine can run, and why not."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="list backends x devices: available or why not")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from vecx.registry import backend, list_backends

    rows = []
    for st in list_backends():
        device_name = ""
        if st.available:
            try:
                device_name = backend(st.spec).info().get("device_name", "")
            except Exception as exc:  # available by probe, yet failed to build: say why
                reason = f"{type(exc).__name__}: {exc}"
                st = replace(st, available=False, reason=reason)
        rows.append({**st.__dict__, "device_name": device_name})
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
        return 0
    from vecx.console import make_table, print_table

    table = make_table("vecx backends", ["backend", "available", "version", "device / reason"])
    for r in rows:
        detail = r["device_name"] if r["available"] else r["reason"]
        table.add_row(r["spec"], "yes" if r["available"] else "no", r["version"] or "-", detail)
    print_table(table)
    return 0
