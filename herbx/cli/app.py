"""The typer application and the options every command shares."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(
    name="herbx",
    help="Extract Darwin Core records from herbarium sheets into an event ledger.",
    no_args_is_help=True,
    add_completion=False,
    # Tracebacks must never print local variables: they can hold API keys.
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
)

stderr = Console(stderr=True, highlight=False)


def note(message: str) -> None:
    """Print a diagnostic line to stderr, unwrapped (rich would fold long lines)."""
    typer.echo(message, err=True)


def note_unused_by_local(given: dict[str, bool]) -> None:
    """Say which of the options given (name: whether given) the local engine ignores."""
    ignored = [name for name, was_given in given.items() if was_given]
    if ignored:
        note(f"{', '.join(ignored)}: not used by the local engine, ignored")


LedgerOption = Annotated[
    str | None,
    typer.Option(
        "--ledger",
        envvar="HERBX_LEDGER",
        help="Ledger file or SQLAlchemy URL [default: ./herbx.db].",
        show_default=False,
    ),
]

RunOption = Annotated[
    str | None,
    typer.Option("--run", help="Run id [default: the most recent run]."),
]


# A run or an import that leaves this many events unexported exports them itself,
# so that the first report after it stays within its 3 s: the export runs at about
# 80,000 events a second (docs/projections.md). Fewer cost that report under 2 s,
# and the run does not pay DuckDB's memory (about 200 MB) at its end.
# HERBX_REPORT_EXPORT_AFTER changes it (a slower disk may want it lower).
REPORT_EXPORT_AFTER = 150_000


def report_export_after() -> int:
    value = os.environ.get("HERBX_REPORT_EXPORT_AFTER", "").strip()
    if not value:
        return REPORT_EXPORT_AFTER
    try:
        return max(0, int(value))
    except ValueError:
        # Read when a run has ended: a typo must not turn its success into an error.
        note(
            f"HERBX_REPORT_EXPORT_AFTER={value!r} is not a whole number of events; "
            f"using {REPORT_EXPORT_AFTER}"
        )
        return REPORT_EXPORT_AFTER


def keep_reports_current(ledger: str | None) -> None:
    """Export a big run's events for DuckDB now rather than at the next report."""
    from herbx.ledger import Ledger
    from herbx.warehouse import Warehouse

    threshold = report_export_after()
    try:
        with Ledger.open(ledger, create=False) as opened:
            warehouse = Warehouse(opened)
            if warehouse.behind() >= threshold:
                note(f"exporting {warehouse.behind()} events for herbx report")
                warehouse.refresh()
    except Exception as exc:  # the run is saved; the next report exports instead
        note(f"the report warehouse was not updated ({exc}); herbx report will do it")
