"""``herbx verify``: check the ledger's hash chain and sequence numbers."""

from __future__ import annotations

import typer

from herbx.cli.app import LedgerOption, app
from herbx.errors import TamperedLedger
from herbx.ledger import Ledger
from herbx.verify import verify as walk


@app.command()
def verify(ledger: LedgerOption = None) -> None:
    """Walk the whole ledger; name the first row changed, removed or reordered."""
    with Ledger.open(ledger, create=False) as opened:
        verdict = walk(opened)
        name = opened.name
    if not verdict.ok:
        raise TamperedLedger(
            f"{name}: history broken at position {verdict.position}: {verdict.problem}"
        )
    typer.echo(f"{name}: {verdict.rows} events, hash chain and sequences intact")
