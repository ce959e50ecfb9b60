"""Giving freed memory back to the operating system during a long run.

Every worker thread allocates the large strings of its requests and answers (base64
images, response bodies) from a malloc arena of its own. Freed, those blocks stay
with the arena, scattered between live ones, so over a day-long run each arena keeps
growing although the live data does not. glibc's ``malloc_trim`` returns the free
pages of every arena, and fewer arenas leave fewer half-empty ones behind; elsewhere
there is nothing to do and these do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_ARENA_MAX = -8  # glibc's mallopt parameter


@functools.cache
def _libc_function(name: str):
    library = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(library), name) if library else None
    except (OSError, AttributeError):
        return None


def limit_arenas(count: int) -> None:
    """Let threads started from now on share ``count`` malloc arenas.

    Threads that wait on the network most of the time gain nothing from arenas of
    their own, and each one holds its own free memory.
    """
    mallopt = _libc_function("mallopt")
    if mallopt is not None:
        mallopt(M_ARENA_MAX, count)


def release_free_memory() -> None:
    """Return free heap pages to the operating system, where the C library can."""
    trim = _libc_function("malloc_trim")
    if trim is not None:
        trim(0)
