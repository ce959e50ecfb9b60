"""``herbx replay``: a run as it stood at a moment, or its answers parsed again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from herbx import replay
from herbx.audit import WHEN_HELP, parse_when
from herbx.cli.app import LedgerOption, app, note
from herbx.cli.diff import print_comparison
from herbx.errors import UsageError
from herbx.ledger import Ledger
from herbx.projections import choose_run


@app.command("replay")
def replay_command(
    run: Annotated[str, typer.Argument(help="The run to replay.")],
    until: Annotated[
        str | None,
        typer.Option("--until", help=f"The moment to show. {WHEN_HELP}"),
    ] = None,
    at: Annotated[
        int | None,
        typer.Option("--at", min=1, help="The ledger position to show."),
    ] = None,
    offline: Annotated[
        bool,
        typer.Option(
            "--offline",
            help="Parse the recorded answers again with today's code; no network.",
        ),
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Folder for the rebuilt files."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="The summary as one JSON object.")
    ] = False,
    ledger: LedgerOption = None,
) -> None:
    """Rebuild RUN's files as they stood at a moment, or re-execute it offline."""
    if offline and (until is not None or at is not None):
        raise UsageError("--offline replays the whole run; leave out --until and --at")
    if until is not None and at is not None:
        raise UsageError("give --until or --at, not both")

    with Ledger.open(ledger, create=False) as opened:
        run_id = choose_run(opened, run)
        if offline:
            out = output or Path(f"replay-{run_id}-offline")
            _offline(opened, run_id, out, as_json)
            return
        if at is not None:
            position = at
        elif until is not None:
            position = opened.position_at(parse_when(until, end=True))
            if position == 0:
                raise UsageError(f"the ledger holds nothing written by {until}")
        else:
            position = opened.head()
        out = output or Path(f"replay-{run_id}-at-{position}")
        _make_folder(out)
        state = replay.moment(opened, run_id, position, out)

    summary = state.summary()
    if as_json:
        typer.echo(json.dumps({**summary, "files": state.files}))
    else:
        for name, value in summary.items():
            typer.echo(f"{name:<22} {'' if value is None else value}")
    note(f"wrote {', '.join(state.files)} as of position {position} to {out}")


def _offline(ledger: Ledger, run_id: str, out: Path, as_json: bool = False) -> None:
    _make_folder(out)
    result = replay.offline(ledger, run_id, out)
    comparison = result.comparison
    if as_json:
        summary = {
            "run_id": run_id,
            "identical": result.identical,
            "lines": result.lines,
            "specimens": comparison.specimens,
            "same": comparison.identical,
            "changes": [change.__dict__ for change in comparison.changes],
            "raw": str(result.raw),
        }
        typer.echo(json.dumps(summary))
    elif result.identical:
        typer.echo(
            f"identical: the {result.lines} lines of raw.jsonl rebuilt from the "
            "recorded answers match the original byte for byte"
        )
    elif not comparison.changes:
        typer.echo(
            "same records, other bytes: every outcome and value matches, but other "
            "keys of the lines (model, provider, usage) differ"
        )
    else:
        changed = comparison.specimens - comparison.identical
        typer.echo(
            f"different: today's code gives other results for {changed} of "
            f"{comparison.specimens} specimens"
        )
        print_comparison(comparison, details=True)
    note(f"wrote {result.raw}")


def _make_folder(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {out}: {exc.strerror}") from None
