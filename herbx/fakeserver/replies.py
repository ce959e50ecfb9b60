"""The answers the fake sends, and OpenRouter's JSON error envelope.

Every endpoint returns a ``Reply``; one with ``drop`` set is never sent, so its
connection closes unanswered. Validation steps raise ``Refused`` to return an error
reply from deep inside a handler.
"""

import dataclasses
import json
from typing import Any

MESSAGES = {
    400: "Bad Request",
    401: "User not found.",
    402: "Insufficient credits. Add more using https://openrouter.ai/settings/credits",
    403: "Key limit exceeded (total limit)",
    404: "Not Found",
    408: "Request timed out",
    413: "Request Entity Too Large",
    429: "Rate limit exceeded",
    500: "Internal Server Error",
    502: "Provider returned error",
    503: "Service Unavailable",
    524: "Provider timed out",
    529: "Provider overloaded",
}


@dataclasses.dataclass
class Reply:
    """One answer to send, with what the request log records about it."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    specimen: str | None = None
    cost: float = 0.0
    generation_id: str | None = None
    drop: bool = False


class Refused(Exception):
    """Carries an error reply out of a validation step."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply


def json_reply(status: int, payload: Any, **fields: Any) -> Reply:
    """Return a reply whose body is ``payload`` as JSON."""
    return Reply(status, json.dumps(payload).encode(), **fields)


def error_reply(status: int, message: str | None = None, **metadata: Any) -> Reply:
    """Return OpenRouter's ``{"error": {...}}`` envelope for ``status``."""
    error: dict[str, Any] = {"code": status, "message": message or MESSAGES[status]}
    if metadata:
        error["metadata"] = metadata
    return json_reply(status, {"error": error})
