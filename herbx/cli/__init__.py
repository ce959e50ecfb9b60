"""The ``herbx`` command line: thin command modules over the ``herbx`` library.

Errors a user can fix arrive as ``HerbxError`` and leave as one line on stderr with a
non-zero exit; ``HERBX_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys

import typer

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
        # Not standalone: click would print a usage block and a hint around a bad
        # option's message; a mistake gets one line here, like every other.
        code = app(prog_name="herbx", standalone_mode=False)
    except HerbxError as exc:
        if os.environ.get("HERBX_DEBUG"):
            raise
        print(f"Error: {exc}", file=sys.stderr)
        leave(exc.exit_code)
    except typer.TyperException as exc:
        # A bad option or argument: its context names the command to ask for help.
        context = getattr(exc, "ctx", None)
        message = exc.format_message()
        if context is not None and message == context.get_help():
            print(message, file=sys.stderr)  # a group given no command: its help
            leave(exc.exit_code)
        hint = f" (see {context.command_path} --help)" if context else ""
        print(f"Error: {message.rstrip('.')}{hint}", file=sys.stderr)
        leave(exc.exit_code)
    except typer.Abort:
        print("Error: aborted", file=sys.stderr)
        leave(1)
    except BrokenPipeError:
        leave(1)  # the reader went away (`| head`): nothing more to say
    except SystemExit as exc:
        leave(exc.code)
    # Only an explicit exit code counts; a command's return value is not one.
    leave(code if type(code) is int else 0)


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
