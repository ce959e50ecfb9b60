"""Scripted misbehaviour: the ``Fault`` a test queues, and the HTTP errors it sends.

A fault replaces the answer to the next chat completion(s). ``kind="http"`` becomes a
non-200 reply built here; the other kinds alter a 200 completion and are applied where
completions are built.
"""

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from herbx.fakeserver.replies import MESSAGES, Reply, error_reply

FAULT_KINDS = (
    "http drop hang error_body empty_choices finish_error null_content empty_content "
    "truncated fenced prose"
)
PROVIDER_RAW = "upstream connect error or disconnect/reset before headers"
PROSE_REPLY = (
    "I'm sorry, but I can't make out the label on this herbarium sheet clearly enough "
    "to transcribe any of the requested fields."
)


@dataclasses.dataclass
class Fault:
    """One scripted misbehaviour for the next chat completion request(s).

    ``kind="http"`` answers ``status`` with a JSON error envelope, or with an HTML page
    when ``html`` is set. The other kinds answer 200 with an unusual body (``code`` is
    the error code carried inside it), wait ``seconds`` (``hang``) or close the
    connection (``drop``). A fault applies ``times`` times, then the next one does.
    """

    status: int = 500
    kind: str = "http"
    message: str | None = None
    error_type: str | None = None
    retry_after: str | None = None
    ratelimit_reset_ms: int | None = None
    raw: str | None = None
    html: bool = False
    code: int = 502
    seconds: float = 30.0
    times: int = 1

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS.split():
            raise ValueError(f"unknown fault kind {self.kind!r}")
        if self.retry_after is not None:
            self.retry_after = str(self.retry_after)

    @classmethod
    def free_models_per_day(cls, reset_ms: int | None = None) -> "Fault":
        """Return the 429 of the daily free-model cap (reset: next UTC midnight)."""
        if reset_ms is None:
            today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
            reset_ms = int((today + timedelta(days=1)).timestamp() * 1000)
        message = (
            "Rate limit exceeded: free-models-per-day. "
            "Add 10 credits to unlock 1000 free model requests per day"
        )
        return cls(status=429, message=message, ratelimit_reset_ms=reset_ms)


def fault_reply(fault: Fault) -> Reply:
    """Return the non-200 reply of an ``http`` fault: a JSON envelope or HTML page."""
    headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
    if fault.html:
        title = f"{fault.status} {MESSAGES.get(fault.status, 'Error')}"
        page = (
            f"<!DOCTYPE html><html><head><title>{title}</title></head><body>"
            f"<center><h1>{title}</h1></center><hr><center>cloudflare</center>"
            "</body></html>"
        )
        return Reply(fault.status, page.encode(), "text/html; charset=UTF-8", headers)
    metadata: dict[str, Any] = {}
    if fault.error_type:
        metadata["error_type"] = fault.error_type
    if fault.raw:
        metadata["raw"] = fault.raw
    if fault.ratelimit_reset_ms is not None:
        metadata["headers"] = {
            "X-RateLimit-Limit": "50",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(fault.ratelimit_reset_ms),
        }
    message = fault.message or MESSAGES.get(fault.status, "Error")
    reply = error_reply(fault.status, message, **metadata)
    reply.headers = headers
    return reply
