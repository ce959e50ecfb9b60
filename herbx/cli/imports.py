"""``herbx import``: bring a raw.jsonl from older tools into the ledger."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from herbx import legacy
from herbx.cli.app import LedgerOption, app, keep_reports_current, note
from herbx.cli.run import RUN_ID
from herbx.errors import UsageError
from herbx.ledger import Ledger
from herbx.openrouter import resolve_model


@app.command("import")
def import_command(
    path: Annotated[Path, typer.Argument(help="The raw.jsonl to import.")],
    run_id: Annotated[
        str | None,
        typer.Option(help="Id of the imported run [default: from the name]."),
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Model that made it, where lines do not say.")
    ] = None,
    images: Annotated[
        Path | None,
        typer.Option(
            help="Folder of the sheets, so that specimens line up with herbx runs."
        ),
    ] = None,
    ledger: LedgerOption = None,
) -> None:
    """Import a raw.jsonl written by older tools as a run marked as imported."""
    if not path.is_file():
        raise UsageError(f"{path} is not a file; give the raw.jsonl to import")
    if images is not None and not images.is_dir():
        raise UsageError(f"--images {images} is not a folder")
    if run_id is None:
        stem = re.sub(r"[^A-Za-z0-9._-]+", "-", path.stem).strip(".-") or "raw"
        run_id = f"import-{stem}-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    elif not RUN_ID.fullmatch(run_id):
        raise UsageError(f"--run-id {run_id!r} may hold only letters, digits, . _ -")
    model_id = resolve_model(model) if model else None

    with Ledger.open(ledger) as opened:
        result = legacy.import_file(opened, path, run_id, model_id, images)
    keep_reports_current(ledger)

    for number, why in result.skipped:
        note(f"{path}:{number}: skipped, {why}")
    typer.echo(
        f"imported run {result.run_id}: {result.saved} saved, {result.failed} failed "
        f"from {result.lines} lines ({len(result.skipped)} skipped, "
        f"{result.replaced} replaced by a later line for the same sheet)"
    )
