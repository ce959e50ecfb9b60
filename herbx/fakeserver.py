"""A fake of the OpenRouter API, served over real HTTP on 127.0.0.1.

Tests and demos point herbx at ``FakeOpenRouter.url`` instead of openrouter.ai. The fake
follows the project's notes on the real API: the same paths, bodies, error envelopes
and status codes, including the undocumented ones (errors inside 200 bodies, HTML
error pages, 403 for a key over its own limit).

A completion answers with the recorded model output when the request image is a
resized or re-encoded copy of a recorded specimen, and with a deterministic answer
marked as fake otherwise. Scripted ``Fault`` objects replace the next answers.

Invariants:

- Every request to every endpoint is appended once to ``requests`` when it has been
  answered, dropped, or abandoned at shutdown (status 0 for the last two).
- A completion is billed exactly when the fake builds a body with ``usage.cost``;
  faults that report no usage are never billed. A ``hang`` that outlives its client is
  still billed when it wakes, as the real service bills work the client never saw.
- Content, token counts and cost depend only on the image, model and request.
- Usage never resets: the fake does not live until midnight UTC.
- Nothing is written to stdout or stderr apart from the CLI's one ready line, so no
  secret can leak through the fake.
"""

import argparse
import base64
import binascii
import dataclasses
import hashlib
import io
import json
import math
import secrets
import signal
import string
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from PIL import Image, ImageOps

API_PREFIX = "/api/v1"
KEY_PREFIX = "sk-or-v1-"

# Mean absolute grey-level difference of 16x16 thumbnails: resized or re-encoded copies
# of a sheet stay under 2, distinct sheets of the sample set are 10 or more apart.
FINGERPRINT_SIDE = 16
MATCH_THRESHOLD = 5.0

# USD per million tokens (prompt, completion); the longest matching prefix wins.
PRICES = {
    "openai/gpt-4o-mini": (0.15, 0.60),
    "openai/gpt-4o": (2.50, 10.00),
    "google/gemini-2.5-flash": (0.30, 2.50),
    "anthropic/claude-sonnet-4": (3.00, 15.00),
}
DEFAULT_PRICE = (1.00, 4.00)
PROVIDERS = {"openai": "OpenAI", "google": "Google", "anthropic": "Anthropic"}

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
FAULT_KINDS = (
    "http drop hang error_body empty_choices finish_error null_content empty_content "
    "truncated fenced prose"
)
LIMIT_RESETS = (None, "daily", "weekly", "monthly")
EDITABLE = ("name", "disabled", "limit", "limit_reset", "include_byok_in_limit")
USAGE_FIELDS = ("usage", "usage_daily", "usage_weekly", "usage_monthly")
MAX_IMAGE_BYTES = 20 * 1024 * 1024
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


@dataclasses.dataclass(frozen=True)
class RequestRecord:
    """One request as the fake saw and answered it; status 0 means no answer."""

    time: float
    method: str
    path: str
    key: str | None
    status: int
    specimen: str | None
    cost: float
    generation_id: str | None
    body_json: Any


@dataclasses.dataclass
class _Key:
    secret: str
    name: str
    limit: float | None
    limit_reset: str | None = None
    include_byok_in_limit: bool = False
    disabled: bool = False
    deleted: bool = False
    management: bool = False
    expires_at: str | None = None
    created_at: str = ""
    updated_at: str | None = None
    usage: float = 0.0
    completions: int = 0
    fails_after: int | None = None
    fail_status: int = 401
    dead_status: int | None = None
    transient_401: int = 0


@dataclasses.dataclass
class _Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    specimen: str | None = None
    cost: float = 0.0
    generation_id: str | None = None
    drop: bool = False


@dataclasses.dataclass
class _Answer:
    content: str | None
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str = "stop"


@dataclasses.dataclass
class _ChatRequest:
    model: str
    data: bytes
    image: Image.Image
    size: tuple[int, int]
    detail: str
    text: str


class _Refused(Exception):
    """Carries an error reply out of a validation step."""

    def __init__(self, reply: "_Reply") -> None:
        self.reply = reply


def hash_key(secret: str) -> str:
    """Return the 64-hex hash under which the fake lists a key."""
    return hashlib.sha256(secret.encode()).hexdigest()


def mask_key(secret: str) -> str:
    """Return the masked label OpenRouter shows for a key."""
    tail = secret.removeprefix(KEY_PREFIX)
    return f"{KEY_PREFIX}{tail[:3]}...{tail[-3:]}"


def price_of(model: str) -> tuple[float, float]:
    """Return (prompt, completion) USD per million tokens for a model id."""
    if model.endswith(":free"):
        return (0.0, 0.0)
    matches = [prefix for prefix in PRICES if model.startswith(prefix)]
    return PRICES[max(matches, key=len)] if matches else DEFAULT_PRICE


def cost_of(model: str, prompt_tokens: int, completion_tokens: int) -> float:
    """Return the USD the fake bills, rounded to 10 decimals so sums stay exact."""
    prompt_price, completion_price = price_of(model)
    usd = (prompt_tokens * prompt_price + completion_tokens * completion_price) / 1e6
    return round(usd, 10)


def image_tokens(model: str, width: int, height: int, detail: str = "auto") -> int:
    """Count the prompt tokens of one image by OpenAI's 512-pixel tiling rules."""
    # gpt-4o-mini bills images at about 33 times the tokens of gpt-4o.
    base, per_tile = (2833, 5667) if "gpt-4o-mini" in model else (85, 170)
    if detail == "low":
        return base
    scale = min(1.0, 2048 / max(width, height))
    scale *= min(1.0, 768 / (min(width, height) * scale))
    tiles = math.ceil(width * scale / 512) * math.ceil(height * scale / 512)
    return base + per_tile * tiles


def fingerprint(image: Image.Image) -> bytes:
    """Return a 16x16 grey thumbnail that survives resizing and re-encoding."""
    side = (FINGERPRINT_SIDE, FINGERPRINT_SIDE)
    return image.convert("L").resize(side, Image.Resampling.BOX).tobytes()


def _distance(a: bytes, b: bytes) -> float:
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)


def _text_tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _json_reply(status: int, payload: Any, **fields: Any) -> _Reply:
    return _Reply(status, json.dumps(payload).encode(), **fields)


def _error(status: int, message: str | None = None, **metadata: Any) -> _Reply:
    error: dict[str, Any] = {"code": status, "message": message or MESSAGES[status]}
    if metadata:
        error["metadata"] = metadata
    return _json_reply(status, {"error": error})


class Catalogue:
    """The specimen images and recorded answers the fake recognises."""

    def __init__(self, recorded: Path | None, specimens: Path | None) -> None:
        self.fingerprints: dict[str, list[bytes]] = {}
        self.recordings: dict[str, dict[str, Any]] = {}
        for path in sorted(specimens.iterdir()) if specimens else []:
            if path.suffix.lower() in (".jpg", ".jpeg", ".png", ".tif", ".tiff"):
                self._add_specimen(path)
        for line in recorded.read_text().splitlines() if recorded else []:
            row = json.loads(line) if line.strip() else {}
            if row and row.get("status_code", 200) == 200:
                self.recordings[row["sha256"]] = row["response"]

    def _add_specimen(self, path: Path) -> None:
        data = path.read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            # A draft decode at 1/8 scale keeps the startup of 20 sheets well under 1 s.
            image.draft("L", (FINGERPRINT_SIDE * 8, FINGERPRINT_SIDE * 8))
            # Most sample sheets carry an EXIF rotation; a client may send them upright
            # or as stored, so either view identifies the original.
            views = [fingerprint(image), fingerprint(ImageOps.exif_transpose(image))]
        self.fingerprints[hashlib.sha256(data).hexdigest()] = views

    def identify(self, data: bytes, image: Image.Image) -> str | None:
        """Return the sha256 of the original this image was made from, if any."""
        exact = hashlib.sha256(data).hexdigest()
        if exact in self.fingerprints or exact in self.recordings:
            return exact
        probe = fingerprint(ImageOps.exif_transpose(image))
        distances = {
            sha: min(_distance(probe, view) for view in views)
            for sha, views in self.fingerprints.items()
        }
        best = min(distances, key=distances.__getitem__, default=None)
        return best if best and distances[best] <= MATCH_THRESHOLD else None

    def answer(self, specimen: str | None, prompt_tokens: int) -> _Answer:
        """Return the recorded answer for a specimen, or a synthetic one."""
        response = self.recordings.get(specimen or "")
        if response is not None:
            content = response["choices"][0]["message"]["content"]
            usage = response["usage"]
            return _Answer(content, usage["prompt_tokens"], usage["completion_tokens"])
        remark = f"fake server: no recording for {specimen or 'unknown image'}"
        record = {
            "catalogNumber": {"value": "", "confidence": 0.0},
            "scientificName": {"value": "Synthetic fake answer", "confidence": 0.1},
            "occurrenceRemarks": {"value": remark, "confidence": 0.0},
        }
        content = json.dumps(record, indent=2)
        return _Answer(content, prompt_tokens, _text_tokens(content))


class FakeOpenRouter:
    """A fake OpenRouter on 127.0.0.1; use as a context manager, or start and stop."""

    def __init__(
        self,
        recorded: str | Path | None = None,
        specimens: str | Path | None = None,
        *,
        port: int = 0,
        accept_any_key: bool = False,
        latency: float = 0.0,
        credits: float = 100.0,
    ) -> None:
        self.catalogue = Catalogue(
            Path(recorded) if recorded else None, Path(specimens) if specimens else None
        )
        self.port = port
        self.accept_any_key = accept_any_key
        self.latency = latency
        self.credits = credits
        self.provision_mode = "ok"
        self.provisioned: list[str] = []
        self.requests: list[RequestRecord] = []
        self._keys: dict[str, _Key] = {}
        self._faults: list[list[Any]] = []
        self._generations: dict[str, dict[str, Any]] = {}
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._server: _Server | None = None

    @property
    def url(self) -> str:
        """Return the base URL that replaces https://openrouter.ai/api/v1."""
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    def start(self) -> "FakeOpenRouter":
        """Bind the port and serve on a daemon thread."""
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", self.port), _Handler)
        self._server.fake = self
        self.port = self._server.server_address[1]
        serve = self._server.serve_forever
        threading.Thread(target=serve, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving; requests still hanging are abandoned unanswered."""
        if self._server is not None:
            self._stopping.set()
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeOpenRouter":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def add_key(
        self,
        secret: str,
        limit: float | None = None,
        *,
        name: str = "",
        limit_reset: str | None = None,
        disabled: bool = False,
        expires_at: str | None = None,
    ) -> str:
        """Register an API key and return its hash; ``limit`` None means unlimited."""
        key = _Key(
            secret,
            name or mask_key(secret),
            limit,
            limit_reset=limit_reset,
            disabled=disabled,
            expires_at=expires_at,
            created_at=_now_iso(),
        )
        with self._lock:
            self._keys[hash_key(secret)] = key
        return hash_key(secret)

    def add_management_key(self, secret: str) -> str:
        """Register a management key (keys API and credits only); return its hash."""
        key_hash = self.add_key(secret, name="management")
        with self._lock:
            self._keys[key_hash].management = True
        return key_hash

    def disable_key(self, secret: str, disabled: bool = True) -> None:
        """Disable or re-enable a key, as PATCH /keys/{hash} does."""
        with self._lock:
            self._keys[hash_key(secret)].disabled = disabled

    def key_fails_after(self, secret: str, n: int, status: int = 401) -> None:
        """Make a key answer ``status`` for good after ``n`` more billed completions."""
        with self._lock:
            key = self._keys[hash_key(secret)]
            key.fails_after, key.fail_status = key.completions + n, status
            key.dead_status = status if n <= 0 else None

    def transient_401(self, secret: str, count: int) -> None:
        """Answer the next ``count`` requests with this key, on any path, with 401."""
        with self._lock:
            self._keys[hash_key(secret)].transient_401 = count

    def script(self, faults: list[Fault]) -> None:
        """Queue faults for the next chat completion requests, after those queued."""
        with self._lock:
            self._faults.extend([fault, fault.times] for fault in faults)

    def pending_faults(self) -> int:
        """Return how many scripted fault applications are still queued."""
        with self._lock:
            return sum(remaining for _, remaining in self._faults)

    def cost_by_key(self) -> dict[str, float]:
        """Return the USD billed to each API key by hash, deleted keys included."""
        with self._lock:
            keys = [key for key in self._keys.values() if not key.management]
            return {hash_key(key.secret): round(key.usage, 10) for key in keys}

    def total_cost(self) -> float:
        """Return the USD billed to all keys."""
        return round(sum(self.cost_by_key().values()), 10)

    def _dispatch(
        self, method: str, path: str, query: dict, secret: str | None, body: Any
    ) -> _Reply:
        route = path.removeprefix(API_PREFIX) if path.startswith(API_PREFIX) else ""
        try:
            if (method, route) == ("POST", "/chat/completions"):
                return self._chat(secret, body)
            if method == "GET" and route in ("/key", "/auth/key"):
                key = self._auth(secret)
                flags = {"is_free_tier": False, "is_management_key": key.management}
                return _json_reply(200, {"data": {**self._key_info(key), **flags}})
            if (method, route) == ("GET", "/generation"):
                return self._generation(secret, query.get("id", [""])[0])
            if (method, route) == ("GET", "/credits"):
                self._manager(secret)
                data = {"total_credits": self.credits, "total_usage": self.total_cost()}
                return _json_reply(200, {"data": data})
            if route == "/keys" or route.startswith("/keys/"):
                self._manager(secret)
                return self._keys_api(method, route, query, body)
        except _Refused as refused:
            return refused.reply
        return _error(404, f"No route for {method} {path}")

    def _auth(self, secret: str | None) -> _Key:
        if not secret:
            raise _Refused(_error(401, "No auth credentials found"))
        with self._lock:
            key = self._keys.get(hash_key(secret))
            if key is None and self.accept_any_key and secret.startswith(KEY_PREFIX):
                key = self._keys[self.add_key(secret, name="accepted")]
            if key is None or key.deleted or key.disabled or _expired(key):
                raise _Refused(_error(401))
            if key.transient_401 > 0 or key.dead_status == 401:
                key.transient_401 = max(0, key.transient_401 - 1)
                raise _Refused(_error(401))
            return key

    def _manager(self, secret: str | None) -> _Key:
        key = self._auth(secret)
        if not key.management:
            message = "Only management keys can perform this operation"
            raise _Refused(_error(403, message))
        return key

    def _key_info(self, key: _Key) -> dict[str, Any]:
        left = None if key.limit is None else round(max(0, key.limit - key.usage), 10)
        return {
            "label": mask_key(key.secret),
            "limit": key.limit,
            "limit_remaining": left,
            "limit_reset": key.limit_reset,
            "include_byok_in_limit": key.include_byok_in_limit,
            **dict.fromkeys(USAGE_FIELDS, round(key.usage, 10)),
            "byok_usage": 0.0,
            "expires_at": key.expires_at,
        }

    def _key_object(self, key: _Key) -> dict[str, Any]:
        return {
            "hash": hash_key(key.secret),
            "name": key.name,
            "disabled": key.disabled,
            **self._key_info(key),
            "created_at": key.created_at,
            "updated_at": key.updated_at,
        }

    def _keys_api(self, method: str, route: str, query: dict, body: Any) -> _Reply:
        if (method, route) == ("POST", "/keys"):
            return self._provision(body)
        if (method, route) == ("GET", "/keys"):
            disabled_too = query.get("include_disabled", ["false"])[0] == "true"
            offset = int(query.get("offset", ["0"])[0] or 0)
            with self._lock:
                keys = [k for k in reversed(self._keys.values()) if not k.management]
            keys = [
                k for k in keys if not k.deleted and (disabled_too or not k.disabled)
            ]
            page = [self._key_object(k) for k in keys[offset : offset + 100]]
            return _json_reply(200, {"data": page})

        with self._lock:
            key = self._keys.get(route.removeprefix("/keys/"))
        if key is None or key.deleted or key.management:
            return _error(404, "Key not found")
        if method == "DELETE":
            key.deleted = True
            return _json_reply(200, {"deleted": True})
        if method == "PATCH":
            body = body if isinstance(body, dict) else {"limit_reset": "invalid"}
            if body.get("limit_reset") not in LIMIT_RESETS:
                return _error(400, "Invalid key update")
            with self._lock:
                for field in set(EDITABLE) & set(body):
                    setattr(key, field, body[field])
                key.updated_at = _now_iso()
        return _json_reply(200, {"data": self._key_object(key)})

    def _provision(self, body: Any) -> _Reply:
        if self.provision_mode == "fail":
            return _error(500)
        if self.provision_mode == "hang":
            self._stopping.wait(60)
            return _Reply(0, drop=True)
        if not isinstance(body, dict) or not body.get("name"):
            return _error(400, "Missing required field: name")
        if body.get("limit_reset") not in LIMIT_RESETS:
            return _error(400, "limit_reset must be daily, weekly, monthly or null")

        secret = KEY_PREFIX + secrets.token_hex(32)
        key_hash = self.add_key(
            secret,
            body.get("limit"),
            name=body["name"],
            limit_reset=body.get("limit_reset"),
            expires_at=body.get("expires_at"),
        )
        with self._lock:
            key = self._keys[key_hash]
            key.include_byok_in_limit = bool(body.get("include_byok_in_limit"))
            self.provisioned.append(secret)
        data = self._key_object(key)
        if self.provision_mode == "data.key":
            return _json_reply(201, {"data": {**data, "key": secret}})
        return _json_reply(201, {"data": data, "key": secret})

    def _generation(self, secret: str | None, gen_id: str) -> _Reply:
        self._auth(secret)
        with self._lock:
            data = self._generations.get(gen_id)
        if data is None:
            return _error(404, f"Generation {gen_id} not found")
        return _json_reply(200, {"data": data})

    def _chat(self, secret: str | None, body: Any) -> _Reply:
        if self._stopping.wait(self.latency):
            return _Reply(0, drop=True)
        key = self._auth(secret)
        self._check_account(key)
        chat = _parse_chat(body)
        specimen = self.catalogue.identify(chat.data, chat.image)

        tokens = image_tokens(chat.model, *chat.size, chat.detail)
        answer = self.catalogue.answer(specimen, tokens + _text_tokens(chat.text))
        cap = body.get("max_completion_tokens") or body.get("max_tokens")
        if isinstance(cap, int) and 0 < cap < answer.completion_tokens:
            # Like the real model, stop mid-answer when the output budget runs out.
            cut = len(answer.content or "") * cap // answer.completion_tokens
            answer = _Answer(answer.content[:cut], answer.prompt_tokens, cap, "length")
        with self._lock:
            fault = self._next_fault()
        reply = self._apply_fault(fault, key, chat.model, answer) if fault else None
        reply = reply or self._complete(key, chat.model, answer)
        reply.specimen = specimen
        return reply

    def _check_account(self, key: _Key) -> None:
        if key.management:
            message = "Management keys cannot be used for completions"
            raise _Refused(_error(401, message))
        if key.dead_status is not None:
            raise _Refused(_error(key.dead_status))
        if self.total_cost() >= self.credits:
            raise _Refused(_error(402))
        if key.limit is not None and key.usage >= key.limit:
            window = key.limit_reset or "total"
            raise _Refused(_error(403, f"Key limit exceeded ({window} limit)"))

    def _next_fault(self) -> Fault | None:
        if not self._faults:
            return None
        entry = self._faults[0]
        entry[1] -= 1
        if entry[1] <= 0:
            self._faults.pop(0)
        return entry[0]

    def _apply_fault(
        self, fault: Fault, key: _Key, model: str, answer: _Answer
    ) -> _Reply | None:
        metadata = {"raw": fault.raw or PROVIDER_RAW, "provider_name": _provider(model)}
        message = fault.message or MESSAGES[502]
        inner = {"code": fault.code, "message": message, "metadata": metadata}
        content = answer.content or ""
        prompt_only = _Answer("", answer.prompt_tokens, 0)
        match fault.kind:
            case "http":
                return _fault_reply(fault)
            case "drop":
                return _Reply(0, drop=True)
            case "hang":
                if self._stopping.wait(fault.seconds):
                    return _Reply(0, drop=True)
            case "error_body":
                return _json_reply(200, {"error": inner})
            case "empty_choices":
                envelope = _envelope(model, _generation_id())
                return _json_reply(200, {**envelope, "choices": []})
            case "finish_error":
                prompt_only.finish_reason = "error"
                return self._complete(key, model, prompt_only, error=inner)
            case "null_content" | "empty_content":
                prompt_only.content = None if fault.kind == "null_content" else ""
                return self._complete(key, model, prompt_only)
            case "truncated":
                half = content[: len(content) // 2]
                answer = _Answer(
                    half, answer.prompt_tokens, answer.completion_tokens // 2
                )
                answer.finish_reason = "length"
            case "fenced":
                prose = "Here is the data extracted from the herbarium sheet:\n\n"
                content = f"{prose}```json\n{content}\n```"
                answer = _Answer(
                    content, answer.prompt_tokens, answer.completion_tokens
                )
            case "prose":
                tokens = _text_tokens(PROSE_REPLY)
                answer = _Answer(PROSE_REPLY, answer.prompt_tokens, tokens)
        return self._complete(key, model, answer)

    def _complete(
        self, key: _Key, model: str, answer: _Answer, error: dict | None = None
    ) -> _Reply:
        gen_id = _generation_id()
        prompt, completion = answer.prompt_tokens, answer.completion_tokens
        cost = cost_of(model, prompt, completion)
        finish = answer.finish_reason
        message = {"role": "assistant", "content": answer.content, "refusal": None}
        choice = {
            "index": 0,
            "message": message,
            "finish_reason": finish,
            "native_finish_reason": finish,
        }
        if error is not None:
            choice["error"] = error
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "cost": cost,
            "is_byok": False,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }
        payload = {**_envelope(model, gen_id), "choices": [choice], "usage": usage}
        generation = {
            "id": gen_id,
            "model": model,
            "provider_name": _provider(model),
            "total_cost": cost,
            "tokens_prompt": prompt,
            "tokens_completion": completion,
            "latency": int(self.latency * 1000),
            "num_media_prompt": 1,
            "finish_reason": finish,
        }

        with self._lock:
            key.usage += cost
            key.completions += 1
            if key.fails_after is not None and key.completions >= key.fails_after:
                key.dead_status = key.fail_status
            self._generations[gen_id] = generation
        return _json_reply(200, payload, cost=cost, generation_id=gen_id)


def _expired(key: _Key) -> bool:
    if not key.expires_at:
        return False
    expires = datetime.fromisoformat(key.expires_at.replace("Z", "+00:00"))
    return expires <= datetime.now(UTC)


def _provider(model: str) -> str:
    vendor = model.split("/")[0]
    return PROVIDERS.get(vendor, vendor.capitalize())


def _generation_id() -> str:
    alphabet = string.ascii_letters + string.digits
    suffix = "".join(secrets.choice(alphabet) for _ in range(20))
    return f"gen-{int(time.time())}-{suffix}"


def _envelope(model: str, gen_id: str) -> dict[str, Any]:
    return {
        "id": gen_id,
        "provider": _provider(model),
        "model": model,
        "object": "chat.completion",
        "created": int(time.time()),
    }


def _fault_reply(fault: Fault) -> _Reply:
    headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
    if fault.html:
        title = f"{fault.status} {MESSAGES.get(fault.status, 'Error')}"
        page = (
            f"<!DOCTYPE html><html><head><title>{title}</title></head><body>"
            f"<center><h1>{title}</h1></center><hr><center>cloudflare</center>"
            "</body></html>"
        )
        return _Reply(fault.status, page.encode(), "text/html; charset=UTF-8", headers)
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
    reply = _error(fault.status, message, **metadata)
    reply.headers = headers
    return reply


def _parse_chat(body: Any) -> _ChatRequest:
    """Validate a chat completion body and decode its one image."""
    if not isinstance(body, dict):
        raise _Refused(_error(400, "Request body must be a JSON object"))
    model, messages = body.get("model"), body.get("messages")
    if not isinstance(model, str) or "/" not in model:
        raise _Refused(_error(400, f"{model!r} is not a valid model ID"))
    if "does-not-exist" in model:
        raise _Refused(_error(404, f"No endpoints found for {model}."))
    if not isinstance(messages, list) or not messages:
        raise _Refused(_error(400, 'Input required: specify "prompt" or "messages"'))

    texts, images = [], []
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        for part in content if isinstance(content, list) else []:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                texts.append(str(part.get("text", "")))
            elif kind == "image_url":
                images.append(part.get("image_url") or {})
    if not texts or len(images) != 1:
        raise _Refused(_error(400, "Expected text and exactly one image_url part"))

    header, _, encoded = str(images[0].get("url", "")).partition(",")
    message = "Invalid image: expected a decodable data:image/...;base64, URL"
    invalid = _error(400, message, error_type="invalid_image")
    if not (header.startswith("data:image/") and header.endswith(";base64")):
        raise _Refused(invalid)
    try:
        data = base64.b64decode(encoded, validate=True)
        if len(data) > MAX_IMAGE_BYTES:
            too_large = _error(400, "Image too large", error_type="image_too_large")
            raise _Refused(too_large)
        image = Image.open(io.BytesIO(data))
        size = image.size  # draft() below shrinks image.size; tokens need the sent one
        image.draft("L", (FINGERPRINT_SIDE * 8, FINGERPRINT_SIDE * 8))
        image.load()
    except (binascii.Error, OSError, ValueError, Image.DecompressionBombError):
        raise _Refused(invalid) from None
    detail = str(images[0].get("detail", "auto"))
    return _ChatRequest(model, data, image, size, detail, "\n".join(texts))


class _Server(ThreadingHTTPServer):
    """The HTTP server; knows its fake and keeps quiet about vanished clients."""

    fake: FakeOpenRouter

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out or reset are part of the scenarios the fake serves.
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """Turns HTTP exchanges into ``FakeOpenRouter._dispatch`` calls and records them."""

    # HTTP/1.0 closes each connection after its answer, so no idle keep-alive socket
    # can outlive a stopped fake and a dropped request always reaches a new socket.
    protocol_version = "HTTP/1.0"
    server_version = "FakeOpenRouter/1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        # Silent on purpose: tests grep the output of runs for leaked secrets.
        pass

    def _serve(self) -> None:
        started, fake = time.time(), self.server.fake
        length = self.headers.get("Content-Length", "0")
        raw = self.rfile.read(int(length)) if length.isdigit() else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None  # every endpoint that needs a body answers 400 to None
        auth = self.headers.get("Authorization", "")
        secret = auth[len("Bearer ") :].strip() if auth.startswith("Bearer ") else None
        url = urlsplit(self.path)

        reply = fake._dispatch(
            self.command, url.path, parse_qs(url.query), secret, body
        )
        status = 0 if reply.drop else reply.status
        record = RequestRecord(
            time=started,
            method=self.command,
            path=url.path,
            key=secret,
            status=status,
            specimen=reply.specimen,
            cost=reply.cost,
            generation_id=reply.generation_id,
            body_json=body,
        )
        with fake._lock:
            fake.requests.append(record)
        if reply.drop:
            return
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)
        except OSError:
            pass  # the client gave up (a timeout during a hang): no one to tell

    do_GET = do_POST = do_PATCH = do_DELETE = _serve


def main(argv: list[str] | None = None) -> int:
    """Serve a fake OpenRouter until SIGTERM or Ctrl-C."""
    parser = argparse.ArgumentParser(
        prog="python -m herbx.fakeserver",
        description="Serve a fake OpenRouter API on 127.0.0.1 for tests and demos.",
    )
    add = parser.add_argument
    add("--port", type=int, default=0, help="port; 0 picks a free one")
    add("--recorded", help="JSONL file of recorded responses")
    add("--specimens", help="directory of the original images")
    add("--key", action="append", default=[], help="accept this API key (repeat)")
    add("--management-key", action="append", default=[], help="a management key")
    add("--limit", type=float, help="USD limit of each --key")
    add("--latency", type=float, default=0.0, help="seconds before each completion")
    args = parser.parse_args(argv)

    try:
        # Without --key any sk-or-v1- key is accepted, which is what a demo wants.
        fake = FakeOpenRouter(
            args.recorded,
            args.specimens,
            port=args.port,
            latency=args.latency,
            accept_any_key=not args.key,
        )
        for secret in args.key:
            fake.add_key(secret, args.limit)
        for secret in args.management_key:
            fake.add_management_key(secret)
        fake.start()
    except (OSError, ValueError, KeyError) as exc:
        print(f"Error: cannot start the fake server: {exc}", file=sys.stderr)
        return 1

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"listening on {fake.url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
