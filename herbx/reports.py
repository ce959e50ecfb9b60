"""Named SQL reports: the ones shipped in ``queries/`` and a user's own.

A report is a ``.sql`` file whose first line is a ``-- `` comment saying what it
shows. Reports are looked up in ``HERBX_QUERIES`` (or ``~/.config/herbx/queries``)
first, so a user's file can add a report or replace a shipped one, then in the
reports shipped with herbx. ``getvariable('run_id')`` in a query is the ``--run``
given, or NULL.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from herbx.errors import UsageError


@dataclass(frozen=True)
class Report:
    name: str
    description: str
    sql: str
    source: str


def user_folder() -> Path:
    value = os.environ.get("HERBX_QUERIES")
    return (
        Path(value).expanduser()
        if value
        else Path("~/.config/herbx/queries").expanduser()
    )


def _load(name: str, text: str, source: str) -> Report:
    first = text.lstrip().splitlines()[0] if text.strip() else ""
    description = first.removeprefix("--").strip() if first.startswith("--") else ""
    return Report(name, description, text, source)


def catalogue() -> dict[str, Report]:
    """Every report by name; a user's file wins over a shipped one of that name."""
    found: dict[str, Report] = {}
    shipped = resources.files("herbx.queries")
    for entry in sorted(shipped.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".sql"):
            name = entry.name.removesuffix(".sql")
            found[name] = _load(name, entry.read_text(encoding="utf-8"), "herbx")
    folder = user_folder()
    if folder.is_dir():
        for path in sorted(folder.glob("*.sql")):
            found[path.stem] = _load(
                path.stem, path.read_text(encoding="utf-8"), str(path)
            )
    return found


def find(name: str) -> Report:
    """A report by name, or by the path of a ``.sql`` file."""
    if name.endswith(".sql") and Path(name).is_file():
        path = Path(name)
        return _load(path.stem, path.read_text(encoding="utf-8"), str(path))
    reports = catalogue()
    if name not in reports:
        raise UsageError(
            f"no report named {name!r}; `herbx report --list` shows them, and a "
            f".sql file in {user_folder()} adds one"
        )
    return reports[name]
