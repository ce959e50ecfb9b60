"""The ``herbx`` command line: thin command modules over the ``herbx`` library.

Errors a user can fix arrive as ``HerbxError`` and leave as one line on stderr with a
non-zero exit; ``HERBX_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys

# Loading SQLAlchemy, requests and typer makes tens of thousands of objects, none of
# them garbage: without the cycle collector walking them, every command starts 30 ms
# (a tenth) sooner.
_collecting = gc.isenabled()
gc.disable()
try:
    from herbx.cli import (  # noqa: F401  (registers the commands)
        audit,
        costs,
        diff,
        estimate,
        imports,
        keys,
        models,
        project,
        replay,
        report,
        rerun,
        run,
        runs,
        verify,
    )
    from herbx.cli.app import app
    from herbx.errors import HerbxError
finally:
    if _collecting:
        gc.enable()


def main() -> None:
    """Entry point of the ``herbx`` console script."""
    try:
        app(prog_name="herbx")
    except HerbxError as exc:
        if os.environ.get("HERBX_DEBUG"):
            raise
        print(f"Error: {exc}", file=sys.stderr)
        leave(exc.exit_code)
    except SystemExit as exc:
        leave(exc.code)


def leave(code: int | str | None) -> None:
    """Exit without tearing down every imported module one by one.

    Each command closes its ledger, files and locks itself before it returns; what
    is left is the interpreter freeing the objects of SQLAlchemy, typer and the rest,
    which took 60 ms of every command. Output is flushed first.
    """
    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        # A closed pipe: nothing more can be said there.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code or 0)
