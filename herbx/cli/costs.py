"""``herbx costs``: where the money went, by run, key, model or day."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from herbx import costs as tally
from herbx import tables
from herbx.cli.app import LedgerOption, app
from herbx.ledger import Ledger
from herbx.projections import choose_run
from herbx.store import Store


class By(StrEnum):
    run = "run"
    key = "key"
    model = "model"
    day = "day"


class Format(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


@app.command()
def costs(
    by: Annotated[By, typer.Option(help="Group by run, key, model or day (UTC).")] = (
        By.run
    ),
    run: Annotated[str | None, typer.Option("--run", help="Only this run.")] = None,
    output_format: Annotated[
        Format, typer.Option("--format", help="table, csv or json.")
    ] = Format.table,
    ledger: LedgerOption = None,
) -> None:
    """Spend, requests, successes and unknown-cost attempts, from reported costs."""
    with Ledger.open(ledger, create=False) as opened, Store(opened) as store:
        if run is not None:
            choose_run(opened, run)
        fold = tally.CostTallies()
        store.catch_up(fold)
        with store.reading() as db:
            rows = tally.Costs.load(db, run).by(by.value, run)

    names = list(rows[0])
    values = [[row[name] for name in names] for row in rows]
    typer.echo(tables.render(names, values, output_format.value), nl=False)
