"""Importing a raw.jsonl written by older extraction scripts as a run of the ledger.

Such files hold one JSON object per sheet: ``image`` and either ``dwc`` (the record)
or ``error``, often with ``model``, ``provider``, ``timestamp`` and ``usage``. Fields
come in two shapes, ``{"value": ..., "confidence": ...}`` objects and plain strings;
both are stored as objects (a plain string has no confidence). A line that is not a JSON
object is reported with its number and skipped; a last line without its newline is
what a crash leaves, and is reported as cut off. When a sheet appears twice, the later
line stands, as it would have for the script that wrote the file.

The imported run is marked as such (``imported_from`` on its ``run_started``) and goes
through the same projections, reports and diffs as any run. Its requests were not made
by herbx, so it has no request events and its cost tallies count no requests; the
usage each line reported stays with its record.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from herbx import answers
from herbx import events as ev
from herbx.errors import UsageError
from herbx.ledger import Ledger

BATCH = 500


@dataclass
class Imported:
    """What an import read, kept and skipped."""

    run_id: str
    lines: int = 0
    saved: int = 0
    failed: int = 0
    replaced: int = 0  # lines for a sheet an earlier line already had
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (line, why)


@dataclass(frozen=True)
class Line:
    """One usable line of a legacy raw.jsonl."""

    number: int
    specimen_id: str
    image: str
    fields: dict[str, Any] | None  # None: the line is an error
    error: str
    model: str | None
    provider: str | None
    usage: dict[str, Any] | None
    timestamp: str
    rules: str = ""  # a local engine's draft: the label rules' version


def specimen_id_for(item: dict[str, Any], images_dir: Path | None) -> str:
    """The sheet's id: the hash the line names, else its image's, else its name's.

    An id made from the name cannot line up with runs over the real files; give the
    images folder for that.
    """
    for key in ("specimen_id", "sha256"):
        value = item.get(key)
        if isinstance(value, str) and len(value) == 64:
            return value.lower()
    image = str(item.get("image", ""))
    if images_dir is not None:
        path = images_dir / image
        try:
            with path.open("rb") as handle:
                return hashlib.file_digest(handle, "sha256").hexdigest()
        except OSError:
            pass
    return hashlib.sha256(f"name:{image}".encode()).hexdigest()


def read(path: Path, images_dir: Path | None, result: Imported) -> Iterator[Line]:
    """Yield the usable lines of a legacy file; note the others in ``result``."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        for number, raw in enumerate(handle, start=1):
            result.lines += 1
            torn = not raw.endswith(b"\n")
            if not raw.strip():
                continue
            try:
                item = json.loads(raw)
            except ValueError:
                item = None
            why = _unusable(item)
            if why:
                if torn:
                    why = "cut off: the file ends in the middle of this line"
                result.skipped.append((number, why))
                continue
            assert isinstance(item, dict)
            dwc = item.get("dwc")
            yield Line(
                number=number,
                specimen_id=specimen_id_for(item, images_dir),
                image=str(item["image"]),
                fields=answers.normalise(dwc) if isinstance(dwc, dict) else None,
                error="" if isinstance(dwc, dict) else str(item.get("error")),
                model=_text(item.get("model")),
                provider=_text(item.get("provider")),
                usage=item.get("usage")
                if isinstance(item.get("usage"), dict)
                else None,
                timestamp=_text(item.get("timestamp")) or "",
                rules=_draft_rules(item),
            )


def _unusable(item: Any) -> str:
    if not isinstance(item, dict):
        return "not a JSON object"
    if not isinstance(item.get("image"), str) or not item["image"]:
        return "no image name"
    if not isinstance(item.get("dwc"), dict) and item.get("error") is None:
        return "neither a dwc record nor an error"
    return ""


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _draft_rules(item: dict[str, Any]) -> str:
    """The rules version of a local engine's draft line, "" for any other line."""
    if item.get("draft") is not True:
        return ""
    # A draft must stay marked as one even when its file lost the version.
    return _text(item.get("rules")) or "unknown"


def import_file(
    ledger: Ledger,
    path: Path,
    run_id: str,
    model: str | None = None,
    images_dir: Path | None = None,
) -> Imported:
    """Append a legacy raw.jsonl to the ledger as the imported run ``run_id``."""
    if ledger.last_seq(run_id):
        raise UsageError(f"run {run_id} already exists; choose another --run-id")
    result = Imported(run_id)
    source = path.resolve()
    digest = hashlib.sha256()
    try:
        with source.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None

    # Two passes, so that each sheet gets one outcome: the first finds the line
    # that stands for each sheet (and the models the lines name), the second
    # records just those.
    standing: dict[str, int] = {}
    models: dict[str, str | None] = {}
    for line in read(path, images_dir, result):
        standing[line.specimen_id] = line.number
        models[line.specimen_id] = line.model
    named = set(models.values())
    del models
    # The standing lines all name one model: it made the run. Where some name none,
    # the file may mix models, and the run stays "unknown" unless --model says.
    if model is None and len(named) == 1:
        model = named.pop()

    ledger.append(
        run_id,
        [
            ev.RunStarted(
                model=model or "unknown",
                endpoint="",
                engine="import",
                prompt_sha256="",
                prompt_text="",
                images_dir=str(images_dir.resolve()) if images_dir else "",
                input_digest=digest.hexdigest(),
                imported_from=str(source),
            )
        ],
    )
    pending: list[ev.Event] = []
    for line in read(path, images_dir, Imported(run_id)):
        if standing[line.specimen_id] != line.number:
            result.replaced += 1
            continue
        pending.extend(_events(line, model, result))
        if len(pending) >= BATCH:
            ledger.append(run_id, pending)
            pending = []
    pending.append(
        ev.RunFinished(
            specimens=len(standing),
            succeeded=result.saved,
            failed=result.failed,
            spend=None,
        )
    )
    ledger.append(run_id, pending)
    return result


def _events(line: Line, model: str | None, result: Imported) -> list[ev.Event]:
    events: list[ev.Event] = [
        ev.SpecimenDiscovered(specimen_id=line.specimen_id, path=line.image, size=0)
    ]
    line_model = line.model or model or "unknown"
    if line.fields is not None:
        result.saved += 1
        events.append(
            ev.ResultSaved(
                specimen_id=line.specimen_id,
                path=line.image,
                attempt=0,
                request_id="",
                fields=line.fields,
                model=line_model,
                provider=line.provider,
                usage=line.usage,
                parse_note=f"imported from line {line.number}",
                recorded_at=line.timestamp,
                rules_version=line.rules,
            )
        )
    else:
        result.failed += 1
        events.append(
            ev.SpecimenFailed(
                specimen_id=line.specimen_id,
                path=line.image,
                reason="imported_error",
                message=line.error,
                model=line_model,
                provider=line.provider,
                usage=line.usage,
                recorded_at=line.timestamp,
            )
        )
    return events
