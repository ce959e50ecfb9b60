"""Darwin Core exports: occurrence.csv and a Darwin Core Archive (dwca.zip).

One row per specimen with a saved result, with the standard Darwin Core term names as
columns; model fields that are not Darwin Core terms are left out. Every row is a
``PreservedSpecimen`` whose ``occurrenceID`` is derived from the sheet image's SHA-256,
so it is stable across runs and re-extractions. Values under a confidence threshold
can be left blank. The archive's ``meta.xml`` describes exactly the columns present
and ``eml.xml`` says which run, model, prompt and code produced the records.
"""

from __future__ import annotations

import csv
import io
import sqlite3
import zipfile
from typing import IO
from xml.sax.saxutils import escape, quoteattr

import msgspec

from herbx import events as ev
from herbx.ledger import Record
from herbx.rawjsonl import OUTCOMES

DWC = "http://rs.tdwg.org/dwc/terms/"
OCCURRENCE = DWC + "Occurrence"

# Darwin Core terms that can sit on an Occurrence core row, in the standard's order.
TERMS = (
    "type",
    "modified",
    "language",
    "license",
    "rightsHolder",
    "accessRights",
    "bibliographicCitation",
    "references",
    "institutionID",
    "collectionID",
    "datasetID",
    "institutionCode",
    "collectionCode",
    "datasetName",
    "ownerInstitutionCode",
    "basisOfRecord",
    "informationWithheld",
    "dataGeneralizations",
    "dynamicProperties",
    "occurrenceID",
    "catalogNumber",
    "recordNumber",
    "recordedBy",
    "recordedByID",
    "individualCount",
    "organismQuantity",
    "organismQuantityType",
    "sex",
    "lifeStage",
    "reproductiveCondition",
    "caste",
    "behavior",
    "vitality",
    "establishmentMeans",
    "degreeOfEstablishment",
    "pathway",
    "georeferenceVerificationStatus",
    "occurrenceStatus",
    "preparations",
    "disposition",
    "associatedMedia",
    "associatedOccurrences",
    "associatedReferences",
    "associatedSequences",
    "associatedTaxa",
    "otherCatalogNumbers",
    "occurrenceRemarks",
    "organismID",
    "organismName",
    "organismScope",
    "associatedOrganisms",
    "previousIdentifications",
    "organismRemarks",
    "materialEntityID",
    "materialSampleID",
    "verbatimLabel",
    "eventID",
    "parentEventID",
    "fieldNumber",
    "eventDate",
    "eventTime",
    "startDayOfYear",
    "endDayOfYear",
    "year",
    "month",
    "day",
    "verbatimEventDate",
    "habitat",
    "samplingProtocol",
    "sampleSizeValue",
    "sampleSizeUnit",
    "samplingEffort",
    "fieldNotes",
    "eventRemarks",
    "locationID",
    "higherGeographyID",
    "higherGeography",
    "continent",
    "waterBody",
    "islandGroup",
    "island",
    "country",
    "countryCode",
    "stateProvince",
    "county",
    "municipality",
    "locality",
    "verbatimLocality",
    "minimumElevationInMeters",
    "maximumElevationInMeters",
    "verbatimElevation",
    "verticalDatum",
    "minimumDepthInMeters",
    "maximumDepthInMeters",
    "verbatimDepth",
    "locationAccordingTo",
    "locationRemarks",
    "decimalLatitude",
    "decimalLongitude",
    "geodeticDatum",
    "coordinateUncertaintyInMeters",
    "coordinatePrecision",
    "pointRadiusSpatialFit",
    "verbatimCoordinates",
    "verbatimLatitude",
    "verbatimLongitude",
    "verbatimCoordinateSystem",
    "verbatimSRS",
    "footprintWKT",
    "georeferencedBy",
    "georeferencedDate",
    "georeferenceProtocol",
    "georeferenceSources",
    "georeferenceRemarks",
    "identificationID",
    "verbatimIdentification",
    "identificationQualifier",
    "typeStatus",
    "identifiedBy",
    "identifiedByID",
    "dateIdentified",
    "identificationReferences",
    "identificationVerificationStatus",
    "identificationRemarks",
    "taxonID",
    "scientificNameID",
    "acceptedNameUsage",
    "scientificName",
    "higherClassification",
    "kingdom",
    "phylum",
    "class",
    "order",
    "family",
    "subfamily",
    "genus",
    "specificEpithet",
    "infraspecificEpithet",
    "taxonRank",
    "verbatimTaxonRank",
    "scientificNameAuthorship",
    "vernacularName",
    "nomenclaturalCode",
    "taxonomicStatus",
    "taxonRemarks",
)
_KNOWN = frozenset(TERMS)
FIXED = {"basisOfRecord": "PreservedSpecimen"}


def occurrence_id(specimen_id: str) -> str:
    """A stable identifier for the specimen: its image's SHA-256 as a URN."""
    return f"urn:sha256:{specimen_id}"


class OccurrenceRows:
    """The fold behind occurrence.csv and dwca.zip: each specimen's standing saved
    fields, in the order raw.jsonl lists them, and each run's start (for eml.xml)."""

    name = "occurrence"
    version = 2  # 2: drafts of the local engine say so in occurrenceRemarks
    types = (*OUTCOMES, "specimen_requeued", "run_started")
    tables = ("occurrence_rows", "occurrence_runs")
    schema = (
        "CREATE TABLE occurrence_rows (run_id TEXT NOT NULL, "
        "specimen_id TEXT NOT NULL, position INTEGER NOT NULL, fields BLOB NOT NULL, "
        "PRIMARY KEY (run_id, specimen_id)) WITHOUT ROWID",
        "CREATE INDEX occurrence_rows_order ON occurrence_rows (run_id, position)",
        "CREATE TABLE occurrence_runs (run_id TEXT PRIMARY KEY, ts TEXT NOT NULL, "
        "started BLOB NOT NULL)",
    )

    def apply(self, db: sqlite3.Connection, record: Record) -> None:
        event = record.event
        if isinstance(event, ev.RunStarted):
            db.execute(
                "INSERT OR REPLACE INTO occurrence_runs VALUES (?, ?, ?)",
                (record.run_id, record.ts, ev.encode(event)),
            )
        elif isinstance(event, ev.ResultSaved):
            fields = event.fields
            if event.rules_version and "occurrenceRemarks" not in fields:
                # A draft must not pass for a checked transcription downstream.
                note = (
                    "draft transcription by OCR and label rules "
                    f"{event.rules_version}; not verified"
                )
                # herbx is sure of its own note: no --min-confidence blanks it.
                fields = {
                    **fields,
                    "occurrenceRemarks": {"value": note, "confidence": 1.0},
                }
            db.execute(
                "INSERT OR REPLACE INTO occurrence_rows VALUES (?, ?, ?, ?)",
                (
                    record.run_id,
                    event.specimen_id,
                    record.position,
                    msgspec.json.encode(fields),
                ),
            )
        else:  # a failure or a requeue withdraws the specimen's row
            db.execute(
                "DELETE FROM occurrence_rows WHERE run_id = ? AND specimen_id = ?",
                (record.run_id, record.specimen_id),
            )


def records(
    db: sqlite3.Connection, run_id: str, min_confidence: float | None = None
) -> list[dict[str, str]]:
    """Each saved specimen's Darwin Core values, in the order raw.jsonl has them."""
    rows = []
    stored = db.execute(
        "SELECT specimen_id, fields FROM occurrence_rows WHERE run_id = ? "
        "ORDER BY position",
        (run_id,),
    )
    for specimen_id, fields in stored:
        row = {"occurrenceID": occurrence_id(specimen_id), **FIXED}
        for term, field in msgspec.json.decode(fields).items():
            if term not in _KNOWN or term in row:
                continue
            value = str(field.get("value", "")).strip()
            confidence = field.get("confidence")
            if (
                min_confidence is not None
                and "confidence" in field
                and (confidence is None or confidence < min_confidence)
            ):
                value = ""
            if value:
                row[term] = value
        rows.append(row)
    return rows


def columns(rows: list[dict[str, str]]) -> list[str]:
    """The terms that hold a value in some row, in the standard's order."""
    present = {term for row in rows for term in row} - {"occurrenceID"}
    # The identifier comes first: the archive's core <id> points at column 0.
    return ["occurrenceID", *(term for term in TERMS if term in present)]


def write_csv(rows: list[dict[str, str]], out: IO[str]) -> None:
    names = columns(rows) or ["occurrenceID", "basisOfRecord"]
    writer = csv.DictWriter(out, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({name: row.get(name, "") for name in names})


def occurrence_csv(
    db: sqlite3.Connection,
    run_id: str,
    out: IO[bytes],
    min_confidence: float | None = None,
) -> None:
    """Write occurrence.csv for a run."""
    text = io.StringIO()
    write_csv(records(db, run_id, min_confidence), text)
    out.write(text.getvalue().encode("utf-8"))


def meta_xml(names: list[str]) -> str:
    fields = "\n".join(
        f'    <field index="{index}" term={quoteattr(DWC + name)}/>'
        for index, name in enumerate(names)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<archive xmlns="http://rs.tdwg.org/dwc/text/" metadata="eml.xml">\n'
        f'  <core encoding="UTF-8" fieldsTerminatedBy="\\t" linesTerminatedBy="\\n" '
        f'fieldsEnclosedBy="" ignoreHeaderLines="1" rowType="{OCCURRENCE}">\n'
        "    <files>\n      <location>occurrence.txt</location>\n    </files>\n"
        '    <id index="0"/>\n'
        f"{fields}\n"
        "  </core>\n"
        "</archive>\n"
    )


def eml_xml(run_id: str, started: ev.RunStarted | None, published: str) -> str:
    model = started.model if started else "unknown"
    prompt = started.prompt_sha256 if started else "unknown"
    version = started.herbx_version if started else "unknown"
    local = started is not None and started.engine == "local"
    if started is None:
        source = "Unknown source."
    elif local:
        source = (
            f"Images under {started.images_dir}, read where herbx ran by its local "
            "OCR engine (RapidOCR), label text mapped to terms by rules."
        )
    else:
        source = f"Images under {started.images_dir}, sent to {started.endpoint}."
    how = (
        f"model {model}. Values are drafts read by OCR and label rules and have "
        "not been verified."
        if local
        else f"model {model}, prompt SHA-256 {prompt}. Values were read by a vision "
        "language model and have not been verified."
    )
    abstract = (
        f"Darwin Core records extracted from herbarium sheet images by herbx "
        f"{version}, run {run_id}, {how}"
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<eml:eml xmlns:eml="eml://ecoinformatics.org/eml-2.1.1" '
        'xmlns:dc="http://purl.org/dc/terms/" '
        f'packageId={quoteattr("herbx-" + run_id)} system="herbx" '
        'scope="system" xml:lang="en">\n'
        "  <dataset>\n"
        f"    <title>herbx extraction run {escape(run_id)}</title>\n"
        "    <creator><organizationName>herbx</organizationName></creator>\n"
        f"    <pubDate>{escape(published[:10])}</pubDate>\n"
        "    <language>en</language>\n"
        f"    <abstract><para>{escape(abstract)}</para></abstract>\n"
        "    <methods><methodStep><description><para>"
        f"{escape(source)}"
        "</para></description></methodStep></methods>\n"
        "  </dataset>\n"
        "</eml:eml>\n"
    )


def dwca_zip(
    db: sqlite3.Connection,
    run_id: str,
    out: IO[bytes],
    min_confidence: float | None = None,
) -> None:
    """Write a Darwin Core Archive for a run (occurrence core, meta.xml, eml.xml)."""
    rows = records(db, run_id, min_confidence)
    names = columns(rows) or ["occurrenceID", "basisOfRecord"]
    table = "".join(
        "\t".join(_tab_safe(row.get(name, "")) for name in names) + "\n"
        for row in [dict(zip(names, names, strict=True)), *rows]
    )
    started, published = None, ""
    run = db.execute(
        "SELECT ts, started FROM occurrence_runs WHERE run_id = ?", (run_id,)
    ).fetchone()
    if run is not None:
        published = run[0]
        started = msgspec.json.decode(run[1], type=ev.RunStarted)
    buffer = io.BytesIO()
    # Fixed timestamps inside the zip, so that a rebuild gives the same bytes.
    stamp = (1980, 1, 1, 0, 0, 0)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in (
            ("occurrence.txt", table),
            ("meta.xml", meta_xml(names)),
            ("eml.xml", eml_xml(run_id, started, published)),
        ):
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text.encode("utf-8"))
    out.write(buffer.getvalue())


def _tab_safe(value: str) -> str:
    # meta.xml declares tab-separated lines without quoting: a tab or line break in
    # a value would split it, so they become spaces.
    return " ".join(value.replace("\t", " ").splitlines())
