"""``herbx runs``: the runs in a ledger and how far each got."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from herbx.audit import short_time
from herbx.cli.app import LedgerOption, app
from herbx.ledger import Ledger
from herbx.state import summaries


@app.command()
def runs(
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per line.")
    ] = False,
    ledger: LedgerOption = None,
) -> None:
    """List the ledger's runs: status, model, counts and spend, oldest first."""
    with Ledger.open(ledger, create=False) as opened:
        states = summaries(opened)

    rows = []
    for state in states:
        started = state.started
        rows.append(
            {
                "run_id": state.run_id,
                "status": state.status,
                "model": started.model if started else "",
                "specimens": state.specimens,
                "saved": state.saved,
                "failed": state.failed,
                "pending": state.pending,
                "spend": round(state.spend, 6),
                "started": state.started_at,
                "updated": state.updated_at,
            }
        )
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row))
        return

    typer.echo(
        f"{'run':<24} {'status':<22} {'saved':>6} {'failed':>6} {'pending':>7} "
        f"{'spend':>10}  {'updated':<20} model"
    )
    for row in rows:
        typer.echo(
            f"{row['run_id']:<24} {row['status']:<22} {row['saved']:>6} "
            f"{row['failed']:>6} {row['pending']:>7} {row['spend']:>10.4f}  "
            f"{short_time(row['updated']):<20} {row['model']}"
        )
