"""Scoring extracted records against a truth table read off the sheets by eye.

The table is a CSV with a ``sha256`` column (the specimen id), a ``script`` column
(``typed``, ``handwritten`` or ``mixed``) and one column per Darwin Core term; an
empty cell means the term is not on the sheet. Per term it counts:

- exact: the value equals the truth once case, spacing and punctuation are ignored;
- near: not exact, but close (similarity of at least ``NEAR``, or for a date the same
  year and month): a value a curator fixes with a keystroke or two;
- wrong: a value that is neither, or a value where the sheet has none;
- missed: no value where the sheet has one;
- absent: rightly no value. Rates count only the sheets that carry the term.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

NEAR = 0.8
VERDICTS = ("exact", "near", "wrong", "missed", "invented", "absent")


@dataclass
class Tally:
    truths: int = 0  # sheets where the term is on the label
    exact: int = 0
    near: int = 0
    wrong: int = 0  # a different value, where the label has one
    missed: int = 0
    invented: int = 0  # a value where the label has none
    absent: int = 0  # rightly empty: the label has no such value

    def add(self, verdict: str, has_truth: bool) -> None:
        self.truths += has_truth
        setattr(self, verdict, getattr(self, verdict) + 1)

    @property
    def exact_rate(self) -> float | None:
        return self.exact / self.truths if self.truths else None

    @property
    def near_rate(self) -> float | None:
        """Exact or near, over the sheets that carry the term."""
        return (self.exact + self.near) / self.truths if self.truths else None


@dataclass
class Score:
    terms: tuple[str, ...]
    by_term: dict[str, Tally] = field(default_factory=dict)
    by_script: dict[str, dict[str, Tally]] = field(default_factory=dict)

    def total(self, script: str | None = None) -> Tally:
        tallies = self.by_term if script is None else self.by_script.get(script, {})
        whole = Tally()
        for tally in tallies.values():
            for name in VERDICTS + ("truths",):
                setattr(whole, name, getattr(whole, name) + getattr(tally, name))
        return whole


def read_truth(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def script_class(row: Mapping[str, str]) -> str:
    """``typed`` or ``handwritten``: mixed labels count with handwriting."""
    return "typed" if row.get("script") == "typed" else "handwritten"


def score(
    truth: Iterable[Mapping[str, str]],
    records: Mapping[str, Mapping[str, Any]],
    terms: tuple[str, ...],
) -> Score:
    """Score ``records`` (specimen id -> {term: {"value": ...}}) against the truth."""
    result = Score(terms, {term: Tally() for term in terms})
    for row in truth:
        fields = records.get(row["sha256"], {})
        script = result.by_script.setdefault(
            script_class(row), {term: Tally() for term in terms}
        )
        for term in terms:
            expected = (row.get(term) or "").strip()
            got = fields.get(term)
            value = str(got.get("value", "")) if isinstance(got, dict) else ""
            verdict = judge(term, expected, value.strip())
            result.by_term[term].add(verdict, bool(expected))
            script[term].add(verdict, bool(expected))
    return result


def judge(term: str, expected: str, value: str) -> str:
    if not expected:
        return "invented" if value else "absent"
    if not value:
        return "missed"
    if normal(expected) == normal(value):
        return "exact"
    if term == "eventDate":
        return "near" if expected[:7] == value[:7] and len(value) >= 7 else "wrong"
    ratio = SequenceMatcher(None, spaced(expected), spaced(value)).ratio()
    return "near" if ratio >= NEAR else "wrong"


def normal(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.casefold())


def spaced(text: str) -> str:
    return " ".join(re.findall(r"[^\W_]+", text.casefold()))
