"""Crash points for testing recovery: kill the process at a named step.

``HERBX_FAILPOINTS="after_request_sent=3,raw_write_torn=2"`` makes the process kill
itself with SIGKILL the third time it reaches ``after_request_sent``, or half-way
through the second raw.jsonl line. Unset (always, outside tests), every check is one
dictionary lookup on an empty dict.
"""

from __future__ import annotations

import os
import signal

_counts: dict[str, int] = {}


def _parse(text: str) -> dict[str, int]:
    points = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, count = item.partition("=")
        points[name] = int(count or 1)
    return points


_armed = _parse(os.environ.get("HERBX_FAILPOINTS", ""))


def due(name: str) -> bool:
    """Count a pass through ``name``; True when this pass is the one to crash at."""
    if name not in _armed:
        return False
    _counts[name] = _counts.get(name, 0) + 1
    return _counts[name] == _armed[name]


def crash() -> None:
    """Die at once, as a power cut or `kill -9` would: no cleanup, no flush."""
    os.kill(os.getpid(), signal.SIGKILL)


def hit(name: str) -> None:
    """Crash here if ``name`` is armed for this pass."""
    if due(name):
        crash()
