"""The ``herbx`` command line: thin command modules over the ``herbx`` library.

Errors a user can fix arrive as ``HerbxError`` and leave as one line on stderr with a
non-zero exit; ``HERBX_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import os
import sys

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


def main() -> None:
    """Entry point of the ``herbx`` console script."""
    try:
        app(prog_name="herbx")
    except HerbxError as exc:
        if os.environ.get("HERBX_DEBUG"):
            raise
        print(f"Error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
