"""``herbx keys``: make, inspect and rotate API keys, and the key options of a run."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import msgspec
import typer

from herbx import events as ev
from herbx.cli.app import LedgerOption, app, note
from herbx.errors import ApiError, UsageError
from herbx.keyring import KeyPolicy, KeySources
from herbx.keys import Redactor, check, clean, fingerprint
from herbx.keystore import API_KEY, MANAGEMENT_KEY, KeysFile, default_path
from herbx.ledger import Ledger
from herbx.openrouter import (
    DEFAULT_BASE_URL,
    Client,
    TransportFailure,
    check_base_url,
)
from herbx.provisioning import DEFAULT_KEY_LIMIT, ProvisioningFailed

keys_app = typer.Typer(
    help="Make, inspect and rotate OpenRouter API keys.", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")

# Key events made outside any run are kept in a stream of their own.
KEYS_STREAM = "herbx-keys"

KeysFileOption = Annotated[
    Path | None,
    typer.Option(
        "--keys-file",
        envvar="HERBX_KEYS_FILE",
        help="Keys file [default: ~/.config/herbx/keys.env].",
        show_default=False,
    ),
]
ProvisionCommandOption = Annotated[
    str | None,
    typer.Option(
        "--provision-command",
        envvar="HERBX_PROVISION_COMMAND",
        help="Command that adds a new key to the keys file.",
    ),
]
KeyLimitOption = Annotated[
    float,
    typer.Option("--key-limit", min=0.0, help="Spending limit of new keys (USD)."),
]
NewKeyLimitOption = Annotated[
    float, typer.Option("--limit", min=0.0, help="Spending limit of the key (USD).")
]


class LimitReset(StrEnum):
    daily = "daily"
    weekly = "weekly"
    monthly = "monthly"


KeyLimitResetOption = Annotated[
    LimitReset | None,
    typer.Option("--key-limit-reset", help="Reset new keys' limits (UTC midnight)."),
]
NewKeyLimitResetOption = Annotated[
    LimitReset | None,
    typer.Option("--limit-reset", help="Reset the limit daily, weekly or monthly."),
]
BaseUrlOption = Annotated[
    str, typer.Option(envvar="OPENROUTER_BASE_URL", help="OpenRouter API base URL.")
]


def key_sources(
    keys_file: Path | None,
    provision_command: str | None = None,
    key_limit: float | None = DEFAULT_KEY_LIMIT,
    policy: KeyPolicy | None = None,
    command_timeout: float = 30.0,
    limit_reset: LimitReset | None = None,
) -> KeySources:
    """Gather keys from the environment and the keys file, as a run sees them."""
    store = KeysFile(keys_file or default_path())
    env_key = clean(os.environ.get(API_KEY, ""))
    management = clean(
        os.environ.get(MANAGEMENT_KEY) or store.get(MANAGEMENT_KEY) or ""
    )
    return KeySources(
        keys_file=store,
        env_key=check(env_key, API_KEY) if env_key else None,
        management_key=check(management, MANAGEMENT_KEY) if management else None,
        provision_command=provision_command or None,
        key_limit=key_limit,
        key_limit_reset=limit_reset.value if limit_reset else None,
        command_timeout=command_timeout,
        policy=policy or KeyPolicy(),
    )


def current_key(sources: KeySources) -> str:
    """Return the key a run would start with, or say how to configure one."""
    if sources.env_key:
        return sources.env_key
    keys = sources.keys_file.api_keys()
    if keys:
        return keys[0].value
    raise UsageError(
        f"no API key: set OPENROUTER_API_KEY, or put OPENROUTER_API_KEY=... in "
        f"{sources.keys_file.path}"
    )


def _decode(reply, what: str, redact: Redactor) -> dict:
    try:
        body = msgspec.json.decode(reply.text)
    except msgspec.DecodeError:
        body = None
    if reply.status != 200 or not isinstance(body, dict):
        message = ""
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            message = str(body["error"].get("message", ""))
        raise ApiError(
            f"{what} failed with HTTP {reply.status}"
            + (f": {redact(message)}" if message else "")
        )
    return body


def _usd(value) -> str:
    return "none" if value is None else f"${float(value):.4f}"


@keys_app.command("provision")
def provision(
    name: Annotated[str | None, typer.Option(help="Name of the new key.")] = None,
    limit: NewKeyLimitOption = DEFAULT_KEY_LIMIT,
    limit_reset: NewKeyLimitResetOption = None,
    keys_file: KeysFileOption = None,
    provision_command: ProvisionCommandOption = None,
    base_url: BaseUrlOption = DEFAULT_BASE_URL,
    ledger: LedgerOption = None,
) -> None:
    """Make a new key and make it the keys file's current key."""
    base_url = check_base_url(base_url)
    sources = key_sources(keys_file, provision_command, limit, limit_reset=limit_reset)
    redact = Redactor(sources.secrets())
    provisioner = sources.provisioner(Client(base_url), redact)
    if provisioner is None:
        raise UsageError(
            "no way to make keys: set OPENROUTER_PROVISIONING_KEY (a management key) "
            "or --provision-command"
        )
    key_name = name or f"herbx {datetime.now(UTC):%Y-%m-%d %H:%M:%S}"

    with Ledger.open(ledger) as opened, sources.keys_file.lock():
        previous = _fingerprint_or_none(sources)
        try:
            new = provisioner.provision(key_name)
        except ProvisioningFailed as exc:
            opened.append(
                KEYS_STREAM,
                [ev.ProvisioningFailed(reason=exc.reason, message=redact(str(exc)))],
            )
            raise
        opened.append(
            KEYS_STREAM,
            [
                new.event(),
                ev.KeyRotated(
                    key_fingerprint=new.fingerprint, previous=previous, via=new.via
                ),
            ],
        )
    typer.echo(f"new key {new.fingerprint} ({new.name}), limit {_usd(new.limit)}")
    typer.echo(f"stored as {API_KEY} in {sources.keys_file.path}")
    if sources.env_key:
        note(f"note: {API_KEY} is set in the environment and overrides the keys file")


@keys_app.command("rotate")
def rotate(
    limit: NewKeyLimitOption = DEFAULT_KEY_LIMIT,
    keys_file: KeysFileOption = None,
    provision_command: ProvisionCommandOption = None,
    base_url: BaseUrlOption = DEFAULT_BASE_URL,
    ledger: LedgerOption = None,
) -> None:
    """Provision a key now and make it the current key."""
    provision(
        name=None,
        limit=limit,
        limit_reset=None,
        keys_file=keys_file,
        provision_command=provision_command,
        base_url=base_url,
        ledger=ledger,
    )


def _fingerprint_or_none(sources: KeySources) -> str | None:
    keys = sources.keys_file.api_keys()
    return fingerprint(keys[0].value) if keys else None


@keys_app.command("balance")
def balance(
    keys_file: KeysFileOption = None,
    base_url: BaseUrlOption = DEFAULT_BASE_URL,
) -> None:
    """Show the current key's usage, limit and what remains (GET /key)."""
    sources = key_sources(keys_file)
    secret = current_key(sources)
    redact = Redactor(sources.secrets())
    try:
        reply = Client(base_url).key_info(secret)
    except TransportFailure as exc:
        raise ApiError(f"cannot reach {base_url}: {exc.message}") from None
    data = _decode(reply, "GET /key", redact).get("data") or {}
    typer.echo(f"key        {fingerprint(secret)}")
    typer.echo(f"usage      {_usd(data.get('usage'))}")
    typer.echo(f"limit      {_usd(data.get('limit'))}")
    typer.echo(f"remaining  {_usd(data.get('limit_remaining'))}")
    if data.get("limit_reset"):
        typer.echo(f"resets     {data['limit_reset']}")


@keys_app.command("list")
def list_keys(
    keys_file: KeysFileOption = None,
    base_url: BaseUrlOption = DEFAULT_BASE_URL,
    ledger: LedgerOption = None,
) -> None:
    """List the account's keys joined with what the ledger knows of each."""
    sources = key_sources(keys_file)
    if not sources.management_key:
        raise UsageError(
            "listing the account's keys needs a management key: set "
            "OPENROUTER_PROVISIONING_KEY"
        )
    redact = Redactor(sources.secrets())
    try:
        reply = Client(base_url).list_keys(sources.management_key)
    except TransportFailure as exc:
        raise ApiError(f"cannot reach {base_url}: {exc.message}") from None
    account = _decode(reply, "GET /keys", redact).get("data") or []

    with Ledger.open(ledger) as opened:
        usage = ledger_usage(opened)
    rows = []
    seen = set()
    for item in account:
        fp = usage.by_hash.get(item.get("hash"))
        seen.add(fp)
        rows.append(_row(item.get("name"), item.get("label"), item, fp, usage))
    for fp in usage.fingerprints:
        if fp not in seen:
            rows.append(_row("(not on this account)", "", {}, fp, usage))

    header = (
        "name",
        "label",
        "limit",
        "usage",
        "fingerprint",
        "spend",
        "requests",
        "first used",
        "last used",
        "runs",
    )
    typer.echo("\t".join(header))
    for row in rows:
        typer.echo("\t".join(row))


class _Usage:
    def __init__(self) -> None:
        self.by_hash: dict[str, str] = {}
        self.fingerprints: list[str] = []
        self.spend: dict[str, float] = {}
        self.requests: dict[str, int] = {}
        self.first: dict[str, str] = {}
        self.last: dict[str, str] = {}
        self.runs: dict[str, set[str]] = {}


def ledger_usage(ledger: Ledger) -> _Usage:
    """Fold the ledger into spend, requests and runs per key fingerprint."""
    usage = _Usage()
    for record in ledger.read(
        types=("key_provisioned", "request_sent", "response_received", "key_loaded")
    ):
        fp = record.key_fp
        if fp is None:
            continue
        if fp not in usage.runs:
            usage.fingerprints.append(fp)
            usage.runs[fp] = set()
        event = record.event
        if isinstance(event, ev.KeyProvisioned) and event.openrouter_hash:
            usage.by_hash[event.openrouter_hash] = fp
        elif isinstance(event, ev.RequestSent):
            usage.requests[fp] = usage.requests.get(fp, 0) + 1
            usage.first.setdefault(fp, record.ts)
            usage.last[fp] = record.ts
            usage.runs[fp].add(record.run_id)
        elif isinstance(event, ev.ResponseReceived) and record.cost is not None:
            usage.spend[fp] = usage.spend.get(fp, 0.0) + record.cost
    return usage


def _row(name, label, item: dict, fp: str | None, usage: _Usage) -> tuple[str, ...]:
    def short(ts: str | None) -> str:
        return f"{ts[:10]} {ts[11:19]}Z" if ts else ""

    return (
        str(name or ""),
        str(label or ""),
        _usd(item.get("limit")) if item else "",
        _usd(item.get("usage")) if item else "",
        fp or "",
        _usd(usage.spend.get(fp, 0.0)) if fp else "",
        str(usage.requests.get(fp, 0)) if fp else "",
        short(usage.first.get(fp)),
        short(usage.last.get(fp)),
        ",".join(sorted(usage.runs.get(fp, ()))),
    )
