"""``herbx project``: rebuild a derived file from the ledger alone."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from herbx import projections
from herbx.cli.app import LedgerOption, RunOption, app, note
from herbx.errors import UsageError
from herbx.ledger import Ledger
from herbx.rawjsonl import replace_projected
from herbx.store import Store


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
    rebuild: Annotated[
        bool,
        typer.Option(
            "--rebuild", help="Fold every event again instead of the new ones only."
        ),
    ] = False,
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
    chosen = projections.projection(name)
    options = {}
    if min_confidence is not None:
        if not chosen.thresholded:
            raise UsageError(
                f"--min-confidence applies to occurrence.csv and dwca.zip, not {name}"
            )
        options["min_confidence"] = min_confidence
    with Ledger.open(ledger, create=False) as opened, Store(opened) as store:
        run_id = projections.choose_run(opened, run)
        if run is None:
            note(f"projecting run {run_id}")
        if rebuild:
            store.rebuild(chosen.fold)

        def write(out) -> None:
            projections.write(store, name, run_id, out, **options)

        if output is None:
            write(sys.stdout.buffer)
            sys.stdout.buffer.flush()
            return
        try:
            # The file may be the raw.jsonl a live run appends to: see there.
            replace_projected(output, write)
        except OSError as exc:
            raise UsageError(f"cannot write {output}: {exc.strerror}") from None
