"""``herbx diff`` and ``herbx env diff``: how two runs differ."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from herbx import diffs, projections, tables
from herbx.cli.app import LedgerOption, app
from herbx.diffs import Comparison
from herbx.ledger import Ledger
from herbx.store import Store

env_app = typer.Typer(
    help="Compare the software environments of runs.", no_args_is_help=True
)
app.add_typer(env_app, name="env")


def print_comparison(comparison: Comparison, details: bool) -> None:
    """Counts per field, then (with ``details``) one line per change."""
    names, rows = comparison.table()
    if rows:
        typer.echo(tables.render(names, rows, "table"), nl=False)
    if details:
        for change in comparison.changes:
            typer.echo(
                f"{change.image}  {change.field}  {change.kind}: "
                f"{change.before!r} -> {change.after!r}"
            )


@app.command()
def diff(
    run_a: Annotated[str, typer.Argument(help="The run to compare against.")],
    run_b: Annotated[str, typer.Argument(help="The run compared with it.")],
    details: Annotated[
        bool, typer.Option("--details", help="Also list every change.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per change.")
    ] = False,
    ledger: LedgerOption = None,
) -> None:
    """Compare two runs' records field by field, specimen by specimen."""
    with Ledger.open(ledger, create=False) as opened, Store(opened) as store:
        for run in (run_a, run_b):
            projections.choose_run(opened, run)
        store.catch_up(projections.PROJECTIONS["raw.jsonl"].fold)
        with store.reading() as db:
            comparison = diffs.compare(diffs.paired_lines(db, run_a, run_b))

    if as_json:
        for change in comparison.changes:
            typer.echo(json.dumps(change.__dict__))
        return
    changed = comparison.specimens - comparison.identical
    typer.echo(
        f"{comparison.specimens} specimens: {comparison.identical} the same, "
        f"{changed} with differences"
    )
    print_comparison(comparison, details)


@env_app.command("diff")
def env_diff(
    run_a: Annotated[str, typer.Argument(help="The run to compare against.")],
    run_b: Annotated[str, typer.Argument(help="The run compared with it.")],
    ledger: LedgerOption = None,
) -> None:
    """Show what differs between two runs' environment snapshots."""
    with Ledger.open(ledger, create=False) as opened, Store(opened) as store:
        for run in (run_a, run_b):
            projections.choose_run(opened, run)
        store.catch_up(projections.PROJECTIONS["environment.json"].fold)
        with store.reading() as db:
            before = diffs.snapshot_of(db, run_a)
            after = diffs.snapshot_of(db, run_b)

    changes = diffs.environment_changes(before, after)
    if not changes:
        typer.echo("the environments are the same")
        return
    for what, old, new in changes:
        typer.echo(f"{what}: {old or '-'} -> {new or '-'}")
