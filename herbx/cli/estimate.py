"""``herbx estimate``: what a run over a folder will cost and need."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer

from herbx import drafting
from herbx.cli.app import LedgerOption, app, note_unused_by_local
from herbx.errors import UsageError
from herbx.estimate import FREE_TIER_DAILY, LocalEstimate, estimate, local_estimate
from herbx.ledger import Ledger, resolve_url
from herbx.openrouter import DEFAULT_MODEL, resolve_model
from herbx.provisioning import DEFAULT_KEY_LIMIT
from herbx.specimens import count


@app.command("estimate")
def estimate_command(
    images_dir: Annotated[
        Path, typer.Argument(help="Folder of sheet images.", metavar="IMAGES_DIR")
    ],
    model: Annotated[str, typer.Option(help="Model id or alias.")] = DEFAULT_MODEL,
    engine: Annotated[
        str,
        typer.Option(
            help="openrouter: cost, keys and free-tier days; local: hours of OCR.",
            metavar="openrouter|local",
        ),
    ] = "openrouter",
    key_limit: Annotated[
        float, typer.Option(min=0.0, help="Spending limit per key (USD).")
    ] = DEFAULT_KEY_LIMIT,
    ledger: LedgerOption = None,
) -> None:
    """Plan a run: sheets, cost per sheet, total, keys and free-tier days needed.

    With the local engine a run costs nothing but time: the plan gives that instead.
    """
    if engine not in ("openrouter", "local"):
        raise UsageError(f"--engine {engine!r} is not one of openrouter, local")
    model_id = resolve_model(model)
    # The local engine's model id names nothing an endpoint serves: it means local.
    local = engine == "local" or model_id == drafting.MODEL
    if local:
        note_unused_by_local(
            {
                "--model": model_id not in (DEFAULT_MODEL, drafting.MODEL),
                "--key-limit": key_limit != DEFAULT_KEY_LIMIT,
            }
        )
    specimens = count(images_dir)
    url = resolve_url(ledger)
    exists = url.get_backend_name() != "sqlite" or Path(url.database or "").exists()
    with Ledger.open(ledger, create=False) if exists else nullcontext() as opened:
        if local:
            _print_local(local_estimate(opened, specimens))
            return
        plan = estimate(opened, model_id, specimens, key_limit)

    def usd(value: float | None) -> str:
        return "unknown" if value is None else f"${value:,.4f}"

    rows = [
        ("model", plan.model),
        ("specimens", f"{plan.specimens:,}"),
        ("cost per specimen", f"{usd(plan.per_specimen)} ({plan.source})"),
        ("total", usd(plan.total)),
        ("key limit", usd(plan.key_limit)),
        (
            "keys needed",
            "unknown"
            if plan.keys_needed is None
            else f"{plan.keys_needed} ({plan.keys_needed - 1} rotations)",
        ),
    ]
    rows += [
        (f"free-tier days at {n}/day", f"{plan.free_days(n):,}")
        for n in FREE_TIER_DAILY
    ]
    _print(rows)


def _print_local(plan: LocalEstimate) -> None:
    _print(
        [
            ("model", f"{drafting.MODEL} (local OCR and label rules: draft records)"),
            ("specimens", f"{plan.specimens:,}"),
            ("cost", "$0.0000 (no API, no key)"),
            ("time per specimen", f"{plan.seconds_per_sheet:.1f} s ({plan.source})"),
            ("total time", f"{_duration(plan.hours)} (one sheet at a time)"),
        ]
    )


def _duration(hours: float) -> str:
    seconds = hours * 3600
    if seconds < 59.5:
        return f"{seconds:.0f} s"
    if seconds < 3570:  # what would print as "60 min" is "1.0 h"
        return f"{seconds / 60:.0f} min"
    return f"{hours:,.1f} h"


def _print(rows: list[tuple[str, str]]) -> None:
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        typer.echo(f"{label:<{width}}  {value}")
