"""``herbx project``: rebuild a derived file from the ledger alone."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Annotated

import typer

from herbx import projections
from herbx.cli.app import LedgerOption, RunOption, app, note
from herbx.errors import UsageError
from herbx.ledger import Ledger
from herbx.rawjsonl import write_atomically


@app.command()
def project(
    name: Annotated[
        str,
        typer.Argument(help=f"What to build: {', '.join(projections.PROJECTIONS)}."),
    ],
    run: RunOption = None,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="File to write [default: stdout]."),
    ] = None,
    min_confidence: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="occurrence.csv, dwca.zip: blank values the model was less sure of.",
        ),
    ] = None,
    ledger: LedgerOption = None,
) -> None:
    """Rebuild NAME for a run from the ledger, byte for byte as the run wrote it."""
    build = projections.builder(name)
    if min_confidence is not None:
        if name not in projections.THRESHOLDED:
            raise UsageError(
                f"--min-confidence applies to occurrence.csv and dwca.zip, not {name}"
            )
        build = functools.partial(build, min_confidence=min_confidence)
    with Ledger.open(ledger, create=False) as opened:
        run_id = projections.choose_run(opened, run)
        if run is None:
            note(f"projecting run {run_id}")

        def write(out) -> None:
            build(opened, run_id, out)

        if output is None:
            write(sys.stdout.buffer)
            sys.stdout.buffer.flush()
            return
        try:
            write_atomically(output, write)
        except OSError as exc:
            raise UsageError(f"cannot write {output}: {exc.strerror}") from None
