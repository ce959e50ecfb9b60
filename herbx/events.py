"""Event types of the ledger: frozen, past-tense msgspec Structs in one tagged union.

Invariants:
- An event never changes once appended. A payload that needs a new shape gets a new
  ``version`` and an upgrade function in ``UPGRADES``; old rows are upgraded on read.
- New fields get defaults and a field's type never changes, so every stored version
  still decodes.
- Nothing secret is ever a field: keys appear only as fingerprints.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import msgspec


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Base of every event; ``version`` is the payload schema version."""

    version: ClassVar[int] = 1


class RunStarted(Event, tag="run_started", kw_only=True):
    """A new run began, with everything needed to say later how it was configured."""

    model: str
    endpoint: str
    engine: str = "openrouter"
    prompt_sha256: str
    prompt_text: str
    images_dir: str
    # Ledgers written before the folder was read as a stream hold the input here;
    # since then the run starts before the walk, and ``input_scanned`` holds it.
    input_digest: str = ""
    specimen_count: int = 0
    options: dict[str, Any] = {}
    herbx_version: str = ""
    argv: list[str] = []
    rerun_of: str = ""  # the run whose specimens this one takes again
    imported_from: str = ""  # the raw.jsonl an imported run was read from


class RunResumed(Event, tag="run_resumed", kw_only=True):
    """A process attached to an existing run to continue it."""

    # As in ``run_started``: older ledgers only; see ``input_scanned``.
    input_digest: str = ""
    specimen_count: int = 0
    argv: list[str] = []
    # Specimens left from earlier invocations; the walk may add new ones.
    pending: int = 0
    endpoint: str = ""


class EnvironmentSnapshotTaken(Event, tag="environment_snapshot_taken", kw_only=True):
    """The software environment of the process that is running the extraction."""

    snapshot: dict[str, Any]


class SpecimenDiscovered(Event, tag="specimen_discovered", kw_only=True):
    """An image file joined the run; one specimen per distinct file content."""

    specimen_id: str
    path: str
    size: int
    duplicates: list[str] = []


class DuplicateFound(Event, tag="duplicate_found", kw_only=True):
    """Another file holds the same bytes as a discovered specimen: not sent again."""

    specimen_id: str
    path: str


class InputScanned(Event, tag="input_scanned", kw_only=True):
    """The images folder has been read to the end by this invocation."""

    input_digest: str  # SHA-256 over every "name<TAB>content hash" line, walk order
    files: int
    new: int  # specimens this walk added to the run
    duplicates: int  # files whose bytes another name of the run already holds


class RequestSent(Event, tag="request_sent", kw_only=True):
    """A request is about to go out; committed before the HTTP call.

    Version 2: the image's size is two named integers; version 1 stored them as a
    ``[width, height]`` list (upgraded on read by ``_request_sent_v2``).
    """

    version: ClassVar[int] = 2

    specimen_id: str
    attempt: int
    request_id: str
    key_fingerprint: str | None = None
    model: str
    image_sha256: str = ""
    image_bytes: int = 0
    image_width: int = 0
    image_height: int = 0


class ResponseReceived(Event, tag="response_received", kw_only=True):
    """An HTTP answer arrived, whatever it says; the body is kept for replay."""

    specimen_id: str
    attempt: int
    request_id: str
    status: int
    latency_ms: float
    body: str
    key_fingerprint: str | None = None
    usage: dict[str, Any] | None = None
    cost: float | None = None
    generation_id: str | None = None
    provider: str | None = None
    model: str | None = None
    headers: dict[str, str] = {}


class RequestFailed(Event, tag="request_failed", kw_only=True):
    """An attempt did not yield a usable record; ``reason`` is a stable short code."""

    specimen_id: str
    attempt: int
    request_id: str
    reason: str
    message: str
    retryable: bool = False
    status: int | None = None
    key_fingerprint: str | None = None
    retry_after: float | None = None


class RetryScheduled(Event, tag="retry_scheduled", kw_only=True):
    """A failed attempt will be tried again after ``delay`` seconds."""

    specimen_id: str
    attempt: int
    reason: str
    delay: float


class OcrLine(msgspec.Struct, array_like=True, frozen=True):
    """One line of OCR text: what it says, the recogniser's confidence, where it is.

    ``box`` is ``[left, top, right, bottom]`` in pixels of the upright sheet at its
    own resolution.
    """

    text: str
    score: float
    box: tuple[int, int, int, int]


class OcrRead(Event, tag="ocr_read", kw_only=True):
    """The local engine read a sheet's text; rules turn it into the draft record.

    Kept whole so that label rules of a later version can be replayed over it
    without reading the image again.
    """

    specimen_id: str
    attempt: int
    request_id: str
    engine: dict[str, Any]  # name, version, runtime, models, settings
    image_sha256: str
    width: int  # of the upright sheet
    height: int
    exif_orientation: int = 1
    rotation: int = 0  # degrees counter-clockwise applied after EXIF
    scale: float = 1.0
    duration_ms: int = 0
    lines: list[OcrLine] = msgspec.field(default_factory=list)


class ResultSaved(Event, tag="result_saved", kw_only=True):
    """A specimen's record was parsed and saved; the specimen is done."""

    specimen_id: str
    path: str
    attempt: int
    request_id: str
    fields: dict[str, Any]
    model: str
    provider: str | None = None
    usage: dict[str, Any] | None = None
    parse_note: str = ""
    recorded_at: str = ""  # when another tool saved it (imported runs only)
    # Set by the local engine: the fields are a draft made by label rules of this
    # version from an ``ocr_read`` event, not a model's answer.
    rules_version: str = ""


class SpecimenFailed(Event, tag="specimen_failed", kw_only=True):
    """A specimen finished without a record; ``reason`` says why."""

    specimen_id: str
    path: str
    reason: str
    message: str
    attempts: int = 0
    model: str | None = None
    provider: str | None = None
    usage: dict[str, Any] | None = None
    recorded_at: str = ""  # when another tool recorded it (imported runs only)


class SpecimenRequeued(Event, tag="specimen_requeued", kw_only=True):
    """A failed specimen is being tried again; its earlier failure no longer counts."""

    specimen_id: str
    path: str


class ValidationCheckpoint(Event, tag="validation_checkpoint", kw_only=True):
    """The success rate was checked; ``passed`` False at the early check stops a run."""

    kind: str
    finished: int
    succeeded: int
    rate: float
    threshold: float
    passed: bool


class RunFinished(Event, tag="run_finished", kw_only=True):
    """Every specimen of the run has an outcome."""

    specimens: int
    succeeded: int
    failed: int
    spend: float | None = None


class RunAborted(Event, tag="run_aborted", kw_only=True):
    """The run stopped before finishing; running the same command resumes it."""

    reason: str
    message: str


class KeyLoaded(Event, tag="key_loaded", kw_only=True):
    """A key became the one requests use; ``source`` says where it came from."""

    key_fingerprint: str
    source: str
    limit: float | None = None
    usage: float | None = None


class AuthRejected(Event, tag="auth_rejected", kw_only=True):
    """The endpoint refused a key; ``confirmed`` once a second try was refused too."""

    key_fingerprint: str
    status: int | None
    message: str
    confirmed: bool


class RotationStarted(Event, tag="rotation_started", kw_only=True):
    """herbx is replacing the current key; ``reason`` is why."""

    key_fingerprint: str
    reason: str


class KeyProvisioned(Event, tag="key_provisioned", kw_only=True):
    """A new key was made and stored in the keys file (its secret only there)."""

    key_fingerprint: str
    name: str
    limit: float | None
    openrouter_hash: str | None = None
    via: str = "management_api"


class ProvisioningFailed(Event, tag="provisioning_failed", kw_only=True):
    """No new key could be made; the run stops rather than loop."""

    reason: str
    message: str


class KeyRotated(Event, tag="key_rotated", kw_only=True):
    """Requests from now on use ``key_fingerprint`` instead of ``previous``."""

    key_fingerprint: str
    previous: str | None
    via: str


class KeyRetired(Event, tag="key_retired", kw_only=True):
    """This run no longer uses the key: it is invalid, spent, or about to be."""

    key_fingerprint: str
    reason: str


EVENT_TYPES: tuple[type[Event], ...] = (
    RunStarted,
    RunResumed,
    EnvironmentSnapshotTaken,
    SpecimenDiscovered,
    DuplicateFound,
    InputScanned,
    RequestSent,
    ResponseReceived,
    RequestFailed,
    RetryScheduled,
    OcrRead,
    ResultSaved,
    SpecimenFailed,
    SpecimenRequeued,
    ValidationCheckpoint,
    RunFinished,
    RunAborted,
    KeyLoaded,
    AuthRejected,
    RotationStarted,
    KeyProvisioned,
    ProvisioningFailed,
    KeyRotated,
    KeyRetired,
)

BY_TAG: dict[str, type[Event]] = {cls.__struct_config__.tag: cls for cls in EVENT_TYPES}


def _request_sent_v2(payload: dict[str, Any]) -> dict[str, Any]:
    size = payload.pop("image_size", None) or [0, 0]
    width, height = (list(size) + [0, 0])[:2]
    return {**payload, "image_width": width, "image_height": height}


# (event type, stored version) -> function turning that payload into the next version.
UPGRADES: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = {
    ("request_sent", 1): _request_sent_v2,
}

_encoder = msgspec.json.Encoder()
_decoders = {tag: msgspec.json.Decoder(cls) for tag, cls in BY_TAG.items()}


def type_of(event: Event) -> str:
    """Return the tag under which ``event`` is stored."""
    return event.__struct_config__.tag


def encode(event: Event) -> bytes:
    """Return the canonical JSON payload of ``event`` (its tag included)."""
    return _encoder.encode(event)


def decode(event_type: str, version: int, payload: bytes | str) -> Event:
    """Decode a stored payload, upgrading it first if an older herbx wrote it."""
    cls = BY_TAG.get(event_type)
    if cls is None:
        raise ValueError(f"unknown event type {event_type!r}")
    if version == cls.version:
        return _decoders[event_type].decode(payload)

    data = msgspec.json.decode(payload)
    while version < cls.version:
        data = UPGRADES[(event_type, version)](data)
        version += 1
    return msgspec.convert(data, cls)
