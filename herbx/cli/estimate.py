"""``herbx estimate``: what a run over a folder will cost and need."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from herbx.cli.app import LedgerOption, app
from herbx.estimate import FREE_TIER_DAILY, estimate
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
    key_limit: Annotated[
        float, typer.Option(min=0.0, help="Spending limit per key (USD).")
    ] = DEFAULT_KEY_LIMIT,
    ledger: LedgerOption = None,
) -> None:
    """Plan a run: sheets, cost per sheet, total, keys and free-tier days needed."""
    model_id = resolve_model(model)
    specimens = count(images_dir)
    url = resolve_url(ledger)
    exists = url.get_backend_name() != "sqlite" or Path(url.database or "").exists()
    if exists:
        with Ledger.open(ledger, create=False) as opened:
            plan = estimate(opened, model_id, specimens, key_limit)
    else:
        plan = estimate(None, model_id, specimens, key_limit)

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
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        typer.echo(f"{label:<{width}}  {value}")
