"""``herbx rerun``: the same specimens as an earlier run, with a changed setup."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from herbx import events as ev
from herbx.cli.app import LedgerOption, app, note
from herbx.cli.keys import (
    KeysFileOption,
    ProvisionCommandOption,
    current_key,
    key_sources,
)
from herbx.cli.run import (
    RUN_ID,
    default_prompt,
    execute,
    local_options,
    local_reader,
    read_prompt,
)
from herbx.errors import UsageError
from herbx.extraction import Options
from herbx.ledger import Ledger
from herbx.openrouter import (
    DEFAULT_BASE_URL,
    DEFAULT_MODEL,
    check_base_url,
    resolve_model,
)
from herbx.projections import choose_run


@app.command()
def rerun(
    original: Annotated[
        str, typer.Argument(help="The run whose specimens to take.", metavar="RUN")
    ],
    engine: Annotated[
        str | None,
        typer.Option(help="openrouter or local [default: the original's engine]."),
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Model id or alias [default: the original's].")
    ] = None,
    prompt: Annotated[
        Path | None, typer.Option(help="Prompt file [default: the original's].")
    ] = None,
    run_id: Annotated[
        str | None,
        typer.Option(help="Id of the new run; an existing one is resumed."),
    ] = None,
    base_url: Annotated[
        str,
        typer.Option(envvar="OPENROUTER_BASE_URL", help="OpenAI-compatible endpoint."),
    ] = DEFAULT_BASE_URL,
    out: Annotated[
        Path | None, typer.Option(help="Output folder [default: runs/RUN_ID].")
    ] = None,
    max_side: Annotated[
        int | None, typer.Option(min=256, help="Longest image side [default: same].")
    ] = None,
    max_tokens: Annotated[
        int | None, typer.Option(min=64, help="Max completion tokens [default: same].")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(min=1, max=64, help="Requests in flight at once.")
    ] = None,
    budget: Annotated[
        float | None, typer.Option(min=0.0, help="Stop before spending more USD.")
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Request at most N specimens this time.")
    ] = None,
    keys_file: KeysFileOption = None,
    provision_command: ProvisionCommandOption = None,
    ledger: LedgerOption = None,
) -> None:
    """Run RUN's specimens again, changing the model, prompt or image setup.

    The new run is linked to the original (see `herbx audit`), and `herbx diff
    RUN NEW` compares their records. Everything not given is as the original had
    it, or, when resuming a rerun, as the rerun was started.
    """
    if run_id is not None and not RUN_ID.fullmatch(run_id):
        raise UsageError(f"--run-id {run_id!r} may hold only letters, digits, . _ -")
    with Ledger.open(ledger, create=False) as opened:
        original = choose_run(opened, original)
        started = next(
            (
                record.event
                for record in opened.read(run_id=original, types=("run_started",))
            ),
            None,
        )
        existing = set(opened.run_ids())
        if run_id in existing:
            again = next(iter(opened.read(run_id=run_id, types=("run_started",))))
            if getattr(again.event, "rerun_of", "") != original:
                raise UsageError(
                    f"run {run_id} exists and is not a rerun of {original}; "
                    "choose another --run-id"
                )
            # Resuming the rerun: what it was started with is the default now.
            started = again.event
    if not isinstance(started, ev.RunStarted) or started.imported_from:
        raise UsageError(
            f"run {original} was imported, so herbx has no images for it; "
            "use `herbx run IMAGES_DIR` instead"
        )

    recorded = started.options
    was_local = started.engine == "local"
    engine = engine or started.engine
    if engine not in ("openrouter", "local"):
        raise UsageError(f"--engine {engine!r} is not one of openrouter, local")
    if run_id is None:
        number = 1
        while f"{original}-rerun-{number}" in existing:
            number += 1
        run_id = f"{original}-rerun-{number}"
    resumed = run_id in existing
    doing = f"{'resuming' if resumed else 'starting'} run {run_id} over the specimens"

    if engine == "local":
        reader = local_reader()
        options = local_options(
            Path(started.images_dir), run_id, out, limit, rerun_of=original
        )
        note(f"{doing} of {original}, with the local engine")
        execute(options, None, ledger, new_run=False, reader=reader)
        return

    # Keys first: a rerun that cannot send must not leave a run behind.
    sources = key_sources(keys_file, provision_command)
    if not sources.has_any_key() and not sources.can_provision():
        current_key(sources)  # raises the message that says what to set
    if prompt is not None:
        prompt_text, prompt_source = read_prompt(prompt)
    elif was_local:
        prompt_text, prompt_source = default_prompt(), "default"
    else:
        prompt_text = started.prompt_text
        prompt_source = recorded.get("prompt_source", "default")
    original_model = DEFAULT_MODEL if was_local else started.model
    options = Options(
        images_dir=Path(started.images_dir),
        model=resolve_model(model) if model else original_model,
        base_url=check_base_url(base_url),
        prompt_text=prompt_text,
        prompt_source=prompt_source,
        run_id=run_id,
        out=out,
        limit=limit,
        max_side=max_side or recorded.get("max_side", 1600),
        max_tokens=max_tokens or recorded.get("max_tokens", 2048),
        detail=recorded.get("detail", "high"),
        max_attempts=recorded.get("max_attempts", 4),
        backoff=recorded.get("backoff", 1.0),
        read_timeout=recorded.get("read_timeout", 180.0),
        validate_after=5 if was_local else recorded.get("validate_after", 5),
        validate_min_rate=recorded.get("validate_min_rate", 0.5),
        concurrency=concurrency or (4 if was_local else recorded.get("concurrency", 4)),
        rpm=recorded.get("rpm"),
        budget=budget if budget is not None else recorded.get("budget"),
        rerun_of=original,
        argv=sys.argv,
    )
    note(f"{doing} of {original}")
    execute(options, sources, ledger, new_run=False)
