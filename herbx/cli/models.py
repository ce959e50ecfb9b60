"""``herbx models``: the model aliases herbx knows."""

from __future__ import annotations

import typer

from herbx.cli.app import app
from herbx.openrouter import DEFAULT_MODEL, MODEL_ALIASES


@app.command()
def models() -> None:
    """List model aliases and the full model ids they stand for."""
    width = max(len(alias) for alias in MODEL_ALIASES)
    for alias, model in sorted(MODEL_ALIASES.items()):
        typer.echo(f"{alias:<{width}}  {model}")
    typer.echo(f"default: {DEFAULT_MODEL}; any full id such as vendor/model also works")
