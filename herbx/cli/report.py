"""``herbx report`` and ``herbx sql``: DuckDB over the whole ledger, offline."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from herbx import reports, tables
from herbx.cli.app import LedgerOption, app
from herbx.errors import UsageError
from herbx.ledger import Ledger
from herbx.projections import choose_run
from herbx.warehouse import Warehouse, run_sql


class Format(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


FormatOption = Annotated[
    Format, typer.Option("--format", help="table, csv or json (one object a line).")
]


def _query(ledger: str | None, sql: str, run: str | None, fmt: Format) -> None:
    with Ledger.open(ledger, create=False) as opened:
        if run is not None:
            choose_run(opened, run)
        warehouse = Warehouse(opened)
        warehouse.refresh()
        with warehouse.connect() as conn:
            names, rows = run_sql(conn, sql, run)
    if names:
        typer.echo(tables.render(names, rows, fmt.value), nl=False)


@app.command()
def report(
    name: Annotated[
        str | None, typer.Argument(help="Report name, or a .sql file.")
    ] = None,
    run: Annotated[str | None, typer.Option("--run", help="Only this run.")] = None,
    output_format: FormatOption = Format.table,
    list_reports: Annotated[
        bool, typer.Option("--list", help="List the reports with a line each.")
    ] = False,
    ledger: LedgerOption = None,
) -> None:
    """Run a named DuckDB report over the ledger (see --list)."""
    if list_reports or name is None:
        catalogue = reports.catalogue()
        width = max(len(n) for n in catalogue)
        for report_name, found in catalogue.items():
            typer.echo(f"{report_name:<{width}}  {found.description}")
        if name is None and not list_reports:
            raise UsageError("give a report name (the list is above)")
        return
    _query(ledger, reports.find(name).sql, run, output_format)


@app.command()
def sql(
    query: Annotated[
        str,
        typer.Argument(help="SQL over events, runs, requests, results, keys, costs."),
    ],
    run: Annotated[
        str | None, typer.Option("--run", help="Value of getvariable('run_id').")
    ] = None,
    output_format: FormatOption = Format.table,
    ledger: LedgerOption = None,
) -> None:
    """Run ad-hoc DuckDB SQL over the ledger's views (all times UTC)."""
    _query(ledger, query, run, output_format)
