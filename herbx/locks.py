"""Exclusive locks on a file or a folder, held by this process until the block ends.

flock locks vanish with the process that held them, so a crash never leaves one
behind.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Wait for, then hold, an exclusive lock on ``path`` (created mode 0600)."""
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(descriptor, fcntl.LOCK_UN)
        os.close(descriptor)


@contextmanager
def folder(path: Path) -> Iterator[None]:
    """Wait for, then hold, an exclusive lock on the folder ``path``.

    Locking the folder rather than a file in it leaves nothing behind, and still
    holds when the files in it are replaced.
    """
    descriptor = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            held = True
        except OSError:
            # NFS turns flock into a write lock, which a folder opened for reading
            # cannot take. This lock only orders rewrites of derived files, so it
            # is better to go on without it than to stop a run.
            held = False
        yield
        if held:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
    finally:
        os.close(descriptor)
