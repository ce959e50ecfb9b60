"""Ctrl-C and SIGTERM as an exception that never lands inside a critical section.

A signal that arrives while a ledger append is being committed and folded into the
run's state would leave the process with a state that disagrees with the ledger. Inside
``critical()`` the signal is held and raised as soon as the section ends; outside, it
is raised at once, so even a request hanging on the network is interrupted.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Interrupted(KeyboardInterrupt):
    """The process was asked to stop by ``signum``."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return "Ctrl-C (SIGINT)" if self.signum == signal.SIGINT else "SIGTERM"

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


_depth = 0
_pending: int | None = None


def _handler(signum, _frame) -> None:
    global _pending
    if _depth:
        _pending = signum
        return
    raise Interrupted(signum)


def install() -> None:
    """Route SIGINT and SIGTERM through the handler (main thread only)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _handler)
        signal.signal(signal.SIGTERM, _handler)


@contextmanager
def critical() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block is done."""
    global _depth, _pending
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0 and _pending is not None:
            signum, _pending = _pending, None
            raise Interrupted(signum)
