"""``herbx audit``: the ledger as an operator's log."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from herbx import audit as trail
from herbx.cli.app import LedgerOption, app
from herbx.errors import UsageError
from herbx.ledger import Ledger
from herbx.projections import choose_run


@app.command()
def audit(
    since: Annotated[
        str | None, typer.Option(help="Events at or after WHEN. " + trail.WHEN_HELP)
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Events at or before WHEN. " + trail.WHEN_HELP)
    ] = None,
    run: Annotated[str | None, typer.Option("--run", help="Only this run.")] = None,
    kind: Annotated[
        list[str] | None,
        typer.Option(help="Only events of this kind (repeatable), e.g. run_aborted."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per line.")
    ] = False,
    ledger: LedgerOption = None,
) -> None:
    """Show the ledger's events as log lines in UTC, oldest first."""
    since_ts = trail.parse_when(since) if since else None
    until_ts = trail.parse_when(until, end=True) if until else None
    if since_ts and until_ts and since_ts > until_ts:
        raise UsageError(
            f"--since {since} is after --until {until}; nothing can match "
            "(relative times count back from now: --since 2h --until 1h)"
        )
    with Ledger.open(ledger, create=False) as opened:
        if run is not None:
            choose_run(opened, run)
        with_run = run is None and len(opened.run_ids()) > 1
        out = sys.stdout
        for record, level, text in trail.entries(
            opened, run_id=run, since=since_ts, until=until_ts, kinds=kind
        ):
            if as_json:
                out.write(trail.json_line(record, level, text).decode() + "\n")
            else:
                out.write(trail.line(record, level, text, with_run) + "\n")
        out.flush()
