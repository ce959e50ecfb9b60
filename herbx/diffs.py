"""Differences between two runs: their records field by field, and their environments.

Records are compared by specimen (the image's SHA-256), so a rerun over the same sheets
lines up with the original whatever the file names or the order of answers. A field
is ``changed`` when both runs hold a different value, ``appeared`` when only the second
holds one, ``vanished`` when only the first does; an empty value counts as none.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from herbx.errors import UsageError

KINDS = ("changed", "appeared", "vanished")


@dataclass(frozen=True)
class Change:
    """One difference: a field of a specimen, or a specimen's whole outcome."""

    specimen_id: str
    image: str
    field: str  # a Darwin Core term, or "(outcome)" for saved/failed/absent
    kind: str
    before: str
    after: str


@dataclass
class Comparison:
    """Counts per field and kind, and every change, of one run against another."""

    specimens: int = 0  # specimens in either run
    identical: int = 0  # specimens whose lines carry the same outcome and values
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    changes: list[Change] = field(default_factory=list)

    def add(self, change: Change) -> None:
        self.counts[(change.field, change.kind)] += 1
        self.changes.append(change)

    def table(self) -> tuple[list[str], list[list[Any]]]:
        """Rows of (field, changed, appeared, vanished), fields in name order."""
        names = sorted({name for name, _kind in self.counts})
        rows = [
            [name, *(self.counts[(name, kind)] for kind in KINDS)] for name in names
        ]
        return ["field", *KINDS], rows


def value_of(entry: Any) -> str:
    """The text of a field as models write it: ``{"value": ...}`` or a plain value."""
    if isinstance(entry, dict):
        entry = entry.get("value", "")
    return "" if entry is None else str(entry).strip()


def _outcome(line: dict | None) -> str:
    if line is None:
        return "absent"
    return "saved" if "dwc" in line else "failed"


def compare(pairs: Iterable[tuple[str, bytes | None, bytes | None]]) -> Comparison:
    """Compare raw.jsonl lines paired by specimen: (specimen_id, before, after)."""
    result = Comparison()
    for specimen_id, raw_before, raw_after in pairs:
        result.specimens += 1
        before = json.loads(raw_before) if raw_before else None
        after = json.loads(raw_after) if raw_after else None
        image = (after or before or {}).get("image", specimen_id[:12])
        found = False
        if _outcome(before) != _outcome(after):
            found = True
            result.add(
                Change(
                    specimen_id,
                    image,
                    "(outcome)",
                    "changed",
                    _describe(before),
                    _describe(after),
                )
            )
        elif before and after and before.get("error") != after.get("error"):
            found = True
            result.add(
                Change(
                    specimen_id,
                    image,
                    "(outcome)",
                    "changed",
                    before["error"],
                    after["error"],
                )
            )
        for change in _field_changes(specimen_id, image, before, after):
            found = True
            result.add(change)
        if not found:
            result.identical += 1
    return result


def _describe(line: dict | None) -> str:
    if line is None:
        return "absent"
    return "saved" if "dwc" in line else f"failed: {line.get('error', '')}"


def _field_changes(
    specimen_id: str, image: str, before: dict | None, after: dict | None
) -> Iterator[Change]:
    old = (before or {}).get("dwc") or {}
    new = (after or {}).get("dwc") or {}
    for name in sorted(set(old) | set(new)):
        a, b = value_of(old.get(name)), value_of(new.get(name))
        if a == b:
            continue
        kind = "appeared" if not a else "vanished" if not b else "changed"
        yield Change(specimen_id, image, name, kind, a, b)


def paired_lines(
    db: sqlite3.Connection,
    run_a: str,
    run_b: str,
    table_a: str = "raw_lines",
    table_b: str = "raw_lines",
) -> Iterator[tuple[str, bytes | None, bytes | None]]:
    """Two runs' raw.jsonl lines by specimen, from raw.jsonl fold tables.

    Yields (specimen_id, line of A or None, line of B or None) in specimen order,
    one pair at a time.
    """
    rows = db.execute(
        f"SELECT a.specimen_id, a.line, b.line FROM {table_a} AS a "
        f"LEFT JOIN {table_b} AS b ON b.run_id = ? AND b.specimen_id = a.specimen_id "
        "WHERE a.run_id = ? "
        "UNION ALL "
        f"SELECT b.specimen_id, NULL, b.line FROM {table_b} AS b "
        f"WHERE b.run_id = ? AND NOT EXISTS (SELECT 1 FROM {table_a} AS a "
        "WHERE a.run_id = ? AND a.specimen_id = b.specimen_id) "
        "ORDER BY 1",
        (run_b, run_a, run_b, run_a),
    )
    yield from rows


# -- environments --------------------------------------------------------------------


def environment_changes(before: dict, after: dict) -> list[tuple[str, str, str]]:
    """(what, before, after) for every difference between two snapshots.

    Packages are reported one by one as added, removed or changed; every other part
    of the snapshot by its dotted name.
    """
    changes: list[tuple[str, str, str]] = []
    old_packages = before.get("packages") or {}
    new_packages = after.get("packages") or {}
    flat_before = _flatten({k: v for k, v in before.items() if k != "packages"})
    flat_after = _flatten({k: v for k, v in after.items() if k != "packages"})
    for name in sorted(set(flat_before) | set(flat_after)):
        if name in ("run_id", "taken_at", "argv"):
            continue  # differ between any two runs; not the environment
        a, b = flat_before.get(name, ""), flat_after.get(name, "")
        if a != b:
            changes.append((name, a, b))
    for name in sorted(set(old_packages) | set(new_packages)):
        a, b = old_packages.get(name), new_packages.get(name)
        if a == b:
            continue
        if a is None:
            changes.append((f"package added: {name}", "", b))
        elif b is None:
            changes.append((f"package removed: {name}", a, ""))
        else:
            changes.append((f"package changed: {name}", a, b))
    return changes


def _flatten(data: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(data, dict):
        flat: dict[str, str] = {}
        for key, value in data.items():
            flat.update(_flatten(value, f"{prefix}{key}."))
        return flat
    if isinstance(data, list):
        return {prefix.rstrip("."): json.dumps(data)}
    return {prefix.rstrip("."): "" if data is None else str(data)}


def snapshot_of(db: sqlite3.Connection, run_id: str) -> dict:
    """A run's latest environment snapshot, from the environment.json fold."""
    row = db.execute(
        "SELECT document FROM environment_documents WHERE run_id = ?", (run_id,)
    ).fetchone()
    if row is None:
        raise UsageError(f"run {run_id} has no environment snapshot")
    return json.loads(row[0])
