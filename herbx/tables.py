"""Printing result rows: an aligned table for people, CSV or JSON lines for tools."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Sequence
from decimal import Decimal


def _plain(value: object) -> object:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def render(names: Sequence[str], rows: Sequence[Sequence[object]], fmt: str) -> str:
    """Render rows as ``table``, ``csv`` or ``json`` (one object per line)."""
    if fmt == "json":
        return "".join(
            json.dumps(dict(zip(names, map(_plain, row), strict=True))) + "\n"
            for row in rows
        )
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(names)
        for row in rows:
            writer.writerow(["" if v is None else _plain(v) for v in row])
        return buffer.getvalue()
    return table(names, rows)


def table(names: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """An aligned text table; numbers right-aligned, missing values as ``-``."""

    def cell(value: object) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.6f}".rstrip("0").rstrip(".") if value else "0"
        return str(_plain(value))

    cells = [[cell(value) for value in row] for row in rows]
    numeric = [
        all(isinstance(row[i], int | float | Decimal) or row[i] is None for row in rows)
        for i in range(len(names))
    ]
    widths = [
        max([len(name), *(len(row[i]) for row in cells)])
        for i, name in enumerate(names)
    ]
    lines = ["  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)).rstrip()]
    for row in cells:
        parts = [
            value.rjust(width) if right else value.ljust(width)
            for value, width, right in zip(row, widths, numeric, strict=True)
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines) + "\n"
