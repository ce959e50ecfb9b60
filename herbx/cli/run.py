"""``herbx run``: extract a folder of sheet images, or resume a run."""

from __future__ import annotations

import re
import sys
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import typer

from herbx import interrupts
from herbx.cli.app import (
    LedgerOption,
    app,
    keep_reports_current,
    note,
    note_unused_by_local,
    stderr,
)
from herbx.cli.keys import (
    KeyLimitOption,
    KeyLimitResetOption,
    KeysFileOption,
    ProvisionCommandOption,
    current_key,
    key_sources,
)
from herbx.errors import UsageError
from herbx.extraction import Extraction, Options, Outcome
from herbx.keyring import KeyPolicy, KeySources
from herbx.ledger import Ledger
from herbx.openrouter import (
    DEFAULT_BASE_URL,
    DEFAULT_MODEL,
    check_base_url,
    resolve_model,
)
from herbx.progress import Bar
from herbx.provisioning import DEFAULT_KEY_LIMIT
from herbx.specimens import check_folder
from herbx.state import find_unfinished

RUN_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")
ENGINES = ("auto", "openrouter", "local")


def default_prompt() -> str:
    """Return the Darwin Core prompt shipped with herbx."""
    return resources.files("herbx").joinpath("prompts/darwin_core.txt").read_text()


def read_prompt(path: Path | None) -> tuple[str, str]:
    if path is None:
        return default_prompt(), "default"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read --prompt {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"--prompt {path} is not UTF-8 text") from exc
    if not text.strip():
        raise UsageError(f"--prompt {path} is empty; give a file with the prompt text")
    return text, str(path)


@app.command()
def run(
    images_dir: Annotated[
        Path, typer.Argument(help="Folder of sheet images.", metavar="IMAGES_DIR")
    ],
    engine: Annotated[
        str,
        typer.Option(
            help="openrouter (a vision model), local (OCR and label rules on this "
            "machine, no key, no network; draft records) or auto: local when no API "
            "key is configured."
        ),
    ] = "auto",
    model: Annotated[
        str, typer.Option(help="Model id or alias (see herbx models).")
    ] = DEFAULT_MODEL,
    base_url: Annotated[
        str,
        typer.Option(envvar="OPENROUTER_BASE_URL", help="OpenAI-compatible endpoint."),
    ] = DEFAULT_BASE_URL,
    run_id: Annotated[
        str | None, typer.Option(help="Run id; an existing id resumes that run.")
    ] = None,
    new_run: Annotated[
        bool, typer.Option(help="Start a new run even if an unfinished one matches.")
    ] = False,
    out: Annotated[
        Path | None, typer.Option(help="Output folder [default: runs/RUN_ID].")
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Request at most N specimens this time.")
    ] = None,
    prompt: Annotated[
        Path | None, typer.Option(help="Prompt file instead of the built-in one.")
    ] = None,
    max_side: Annotated[
        int, typer.Option(min=256, help="Downscale images to this longest side (px).")
    ] = 1600,
    max_tokens: Annotated[
        int, typer.Option(min=64, help="Max completion tokens per request.")
    ] = 2048,
    max_attempts: Annotated[
        int, typer.Option(min=1, help="Attempts per specimen for retryable errors.")
    ] = 4,
    backoff: Annotated[
        float, typer.Option(min=0.0, help="First retry delay in seconds; doubles.")
    ] = 1.0,
    read_timeout: Annotated[
        float, typer.Option(min=0.1, max=3600.0, help="Seconds to wait for an answer.")
    ] = 180.0,
    validate_after: Annotated[
        int, typer.Option(min=0, help="Early check after N specimens; 0 disables.")
    ] = 5,
    validate_min_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Least success rate at the check.")
    ] = 0.5,
    concurrency: Annotated[
        int, typer.Option(min=1, max=64, help="Requests in flight at once.")
    ] = 4,
    rpm: Annotated[
        float | None,
        typer.Option(min=0.1, help="Cap on requests per minute (free models: 20)."),
    ] = None,
    budget: Annotated[
        float | None,
        typer.Option(min=0.0, help="Stop before the run's spend would exceed USD."),
    ] = None,
    retry_failed: Annotated[
        bool, typer.Option(help="When resuming, try failed specimens again.")
    ] = False,
    keys_file: KeysFileOption = None,
    provision_command: ProvisionCommandOption = None,
    key_limit: KeyLimitOption = DEFAULT_KEY_LIMIT,
    key_limit_reset: KeyLimitResetOption = None,
    max_keys_per_run: Annotated[
        int, typer.Option(min=0, help="Most keys one run may provision.")
    ] = 3,
    max_keys_per_hour: Annotated[
        int, typer.Option(min=0, help="Most keys provisioned per hour, all runs.")
    ] = 3,
    provision_timeout: Annotated[
        float, typer.Option(min=0.1, help="Seconds a provisioning may take.")
    ] = 30.0,
    confirm_pause: Annotated[
        float, typer.Option(min=0.0, help="Seconds before re-trying a 401.")
    ] = 5.0,
    ledger: LedgerOption = None,
) -> None:
    """Extract Darwin Core records from the sheet images under IMAGES_DIR.

    Every step is recorded in the ledger; kill it at any time and run the same command
    again to continue. Without --run-id, the latest unfinished run over the same
    folder, model and prompt is resumed (--new-run starts afresh). The API key comes
    from OPENROUTER_API_KEY or the keys file; a refused or spent key is replaced
    without stopping the run. With no key configured, the local engine reads the
    sheets instead (--engine local; install it with pip install 'herbx[offline]').
    """
    if run_id is not None and not RUN_ID.fullmatch(run_id):
        raise UsageError(
            f"--run-id {run_id!r} may hold only letters, digits, '.', '_' and '-' "
            "(at most 100, not starting with '.')"
        )
    if engine not in ENGINES:
        raise UsageError(f"--engine {engine!r} is not one of {', '.join(ENGINES)}")
    policy = KeyPolicy(
        confirm_pause=confirm_pause,
        max_per_run=max_keys_per_run,
        max_per_hour=max_keys_per_hour,
    )
    sources = key_sources(
        keys_file,
        provision_command,
        key_limit,
        policy,
        provision_timeout,
        key_limit_reset,
    )
    keyless = not sources.has_any_key() and not sources.can_provision()
    if engine == "auto":
        engine = "local" if keyless else "openrouter"
        if keyless:
            note(
                "no API key configured (OPENROUTER_API_KEY): reading the sheets with "
                "the local OCR engine; its records are drafts"
            )
    if engine == "local":
        note_unused_by_local(
            {
                "--model": model != DEFAULT_MODEL,
                "--prompt": prompt is not None,
                "--max-side": max_side != 1600,
                "--max-tokens": max_tokens != 2048,
                "--concurrency": concurrency != 4,
                "--rpm": rpm is not None,
                "--budget": budget is not None,
            }
        )
        local_run(images_dir, run_id, new_run, out, limit, retry_failed, ledger)
        return
    if keyless:
        current_key(sources)  # raises the message that says what to set
    model_id = resolve_model(model)
    base_url = check_base_url(base_url)
    prompt_text, prompt_source = read_prompt(prompt)
    # Look at the images before the ledger is opened: a wrong folder writes nothing.
    check_folder(images_dir)

    options = Options(
        images_dir=images_dir,
        model=model_id,
        base_url=base_url,
        prompt_text=prompt_text,
        prompt_source=prompt_source,
        run_id=run_id,
        out=out,
        limit=limit,
        max_side=max_side,
        max_tokens=max_tokens,
        max_attempts=max_attempts,
        backoff=backoff,
        read_timeout=read_timeout,
        validate_after=validate_after,
        validate_min_rate=validate_min_rate,
        retry_failed=retry_failed,
        concurrency=concurrency,
        rpm=rpm,
        budget=budget,
        argv=sys.argv,
    )
    execute(options, sources, ledger, new_run=new_run)


def local_run(
    images_dir: Path,
    run_id: str | None,
    new_run: bool,
    out: Path | None,
    limit: int | None,
    retry_failed: bool,
    ledger: str | None,
) -> None:
    """Run the local engine: OCR and label rules, no key, no network."""
    check_folder(images_dir)
    reader = local_reader()
    options = local_options(images_dir, run_id, out, limit, retry_failed)
    execute(options, None, ledger, new_run=new_run, reader=reader)


def local_reader() -> Any:
    """Load the OCR models, or say how to install them, before the ledger is
    touched: a missing extra writes nothing."""
    from herbx import ocr

    try:
        return ocr.Reader()
    except KeyboardInterrupt:
        note("interrupted while the OCR models loaded; nothing was recorded")
        raise typer.Exit(130) from None


def local_options(
    images_dir: Path,
    run_id: str | None,
    out: Path | None,
    limit: int | None,
    retry_failed: bool = False,
    rerun_of: str | None = None,
) -> Options:
    """The options of a local run: no prompt, no endpoint, one sheet at a time,
    and no early check (a sheet the rules cannot read says nothing of the next)."""
    from herbx import drafting

    return Options(
        images_dir=images_dir,
        model=drafting.MODEL,
        base_url="",  # sends nothing anywhere
        prompt_text="",
        prompt_source="none: label rules",
        run_id=run_id,
        out=out,
        limit=limit,
        validate_after=0,
        retry_failed=retry_failed,
        concurrency=1,
        rerun_of=rerun_of,
        engine=drafting.ENGINE,
        argv=sys.argv,
    )


def execute(
    options: Options,
    sources: KeySources | None,
    ledger: str | None,
    *,
    new_run: bool,
    reader: Any = None,
) -> None:
    """Run or resume an extraction, print its summary, exit 1 when it stopped."""
    interrupts.install()
    run_id = options.run_id
    with Ledger.open(ledger) as opened:
        if run_id and new_run and opened.last_seq(run_id):
            raise UsageError(
                f"run {run_id} already exists; drop --new-run to resume it, or "
                "choose another --run-id"
            )
        if run_id is None and not new_run:
            options.run_id = find_unfinished(
                opened, options.images_dir, options.model, options.prompt_text
            )
            if options.run_id:
                note(f"resuming run {options.run_id} (--new-run starts afresh)")
        if reader is not None:
            from herbx.localrun import LocalExtraction

            extraction: Extraction = LocalExtraction(
                opened, options, reader=reader, progress=Bar(stderr)
            )
        else:
            extraction = Extraction(opened, options, sources, progress=Bar(stderr))
        try:
            outcome = extraction.execute()
        except KeyboardInterrupt as exc:
            note(
                f"interrupted; run the same command with --run-id "
                f"{extraction.run_id} to resume"
            )
            code = exc.exit_code if isinstance(exc, interrupts.Interrupted) else 130
            raise typer.Exit(code) from None

    print_summary(outcome, opened.name)
    keep_reports_current(ledger)
    if outcome.stopped is not None:
        note(f"Error: {outcome.stopped}")
        raise typer.Exit(1)


def print_summary(outcome: Outcome, ledger_name: str) -> None:
    """Print counts, success rate, spend and per-field coverage to stdout."""
    state = outcome.state
    total = state.specimens
    saved = state.saved
    failed = state.failed
    finished = saved + failed
    rate = f"{saved / finished:.1%}" if finished else "n/a"
    attempts = "attempt" if state.unknown_cost == 1 else "attempts"
    unknown = (
        f" (+{state.unknown_cost} {attempts} of unknown cost)"
        if state.unknown_cost
        else ""
    )

    started = state.started
    engine = started.options.get("engine") if started else None
    lines = [
        f"run        {outcome.run_id}{' (resumed)' if outcome.resumed else ''}",
        f"specimens  {total}: {saved} saved, {failed} failed, "
        f"{total - finished} pending",
        f"success    {rate}",
        f"cost       ${state.spend:.6f}{unknown}",
        f"raw.jsonl  {outcome.out / 'raw.jsonl'}",
        f"ledger     {ledger_name}",
    ]
    if engine == "local":
        lines.insert(
            1, "engine     local OCR and label rules: draft records, to be checked"
        )
    counts = state.coverage
    if counts:
        lines.append("coverage")
        width = max(len(term) for term in counts)
        for term, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
            lines.append(f"  {term:<{width}}  {count:>5}/{saved}  {count / saved:6.1%}")
    typer.echo("\n".join(lines))
