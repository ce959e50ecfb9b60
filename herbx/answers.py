"""Turning a model's text answer into Darwin Core fields.

Providers that ignore ``response_format`` wrap the JSON in code fences or prose; the
object is recovered from either. The recovered fields always take the shape
``{"term": {"value": str, "confidence": float | None}}``; plain strings are accepted
and given an unknown confidence. A reply with no JSON object is a failure, never an
empty success.
"""

from __future__ import annotations

import json
import re
from typing import Any

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)


class Unparseable(Exception):
    """The answer holds no JSON object of fields."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


def parse(text: str) -> tuple[dict[str, dict[str, Any]], str]:
    """Return the fields of an answer and a note on how they were found."""
    found, note = _find_object(text)
    if found is None:
        raise Unparseable("unparseable", "the answer contains no JSON object")

    fields = normalise(found)
    if not fields:
        raise Unparseable("empty_record", "the answer's JSON object has no fields")
    return fields, note


def normalise(found: dict[Any, Any]) -> dict[str, dict[str, Any]]:
    """Fields as ``{"value": str, "confidence": float | None}``, whatever shape."""
    fields = {}
    for term, raw in found.items():
        if not isinstance(term, str) or not term.strip():
            continue
        fields[term.strip()] = _field(raw)
    return fields


def _find_object(text: str) -> tuple[dict | None, str]:
    stripped = text.strip()
    whole = _load(stripped)
    if isinstance(whole, dict) and not _is_one_field(whole):
        return whole, ""

    for block in _FENCE.findall(text):
        candidate = _load(block.strip())
        if isinstance(candidate, dict) and not _is_one_field(candidate):
            return candidate, "recovered from a fenced code block"

    decoder = json.JSONDecoder()
    for start in _outer_braces(text):
        try:
            candidate, _end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            continue
        if isinstance(candidate, dict) and not _is_one_field(candidate):
            return candidate, "recovered from surrounding prose"
    return None, ""


def _outer_braces(text: str) -> list[int]:
    """Positions of ``{`` that open an object at the top level of the text.

    A brace inside an object that never closed (a reply cut off mid-JSON) is not a
    candidate: its inner objects are fields, not a record.
    """
    starts = []
    depth = 0
    in_string = escaped = False
    for index, char in enumerate(text):
        if depth and in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif depth and char == '"':
            in_string = True
        elif char == "{":
            if depth == 0:
                starts.append(index)
            depth += 1
        elif char == "}" and depth:
            depth -= 1
    return starts


def _is_one_field(candidate: dict) -> bool:
    # {"value": ..., "confidence": ...} is the shape of one field, never a record.
    return bool(candidate) and set(candidate) <= {"value", "confidence"}


def _load(text: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return None


def _field(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict) and "value" in raw:
        return {"value": _text(raw.get("value")), "confidence": _confidence(raw)}
    return {"value": _text(raw), "confidence": None}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _confidence(raw: dict) -> float | None:
    value = raw.get("confidence")
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def covered(fields: dict[str, dict[str, Any]]) -> list[str]:
    """Return the terms whose value is not empty."""
    return [
        term for term, field in fields.items() if str(field.get("value", "")).strip()
    ]
