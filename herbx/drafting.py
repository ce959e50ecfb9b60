"""The local engine: draft records from OCR and label rules, with no key and no network.

A local run goes through the same ledger, projections and reports as a run against a
model. In place of a request and its answer it records one ``ocr_read`` event per
sheet (every line the OCR saw, with its box, and the engine that saw it), and the
draft record the label rules made of it. Its records are marked as drafts in
raw.jsonl: rules read forms well and handwriting poorly.

Because the reading is kept, ``outcome`` can be applied again to it by a later herbx
(``herbx replay RUN --offline``) to show what newer rules would make of the same text.
The run itself is ``herbx.localrun``.
"""

from __future__ import annotations

from herbx import events as ev
from herbx import labels

ENGINE = "local"
MODEL = "local/rapidocr"
PROVIDER = "herbx label rules"


def outcome(read: ev.OcrRead, path: str) -> ev.ResultSaved | ev.SpecimenFailed:
    """The record today's label rules make of a stored reading."""
    try:
        fields = labels.extract(read.lines)
    except Exception as exc:  # a rules bug must not stall the run
        # Every resume would read the sheet again and fail the same way, and the
        # sheets after it would never be read: the sheet fails, the run goes on.
        return ev.SpecimenFailed(
            specimen_id=read.specimen_id,
            path=path,
            reason="rules_error",
            message=f"the label rules {labels.VERSION} failed on this sheet's text "
            f"({type(exc).__name__}: {exc}); the text is kept for a later version",
            attempts=read.attempt,
            model=MODEL,
            provider=PROVIDER,
        )
    if not fields:
        message = (
            f"the OCR read {len(read.lines)} lines and the label rules found no "
            "Darwin Core field in them"
            if read.lines
            else "the OCR found no text on the sheet"
        )
        return ev.SpecimenFailed(
            specimen_id=read.specimen_id,
            path=path,
            reason="no_fields" if read.lines else "no_text",
            message=message,
            attempts=read.attempt,
            model=MODEL,
            provider=PROVIDER,
        )
    return ev.ResultSaved(
        specimen_id=read.specimen_id,
        path=path,
        attempt=read.attempt,
        request_id=read.request_id,
        fields=fields,
        model=MODEL,
        provider=PROVIDER,
        parse_note=f"draft from OCR by label rules {labels.VERSION}",
        rules_version=labels.VERSION,
    )
