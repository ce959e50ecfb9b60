"""The HTTP edge to OpenRouter or any OpenAI-compatible chat endpoint.

``Client`` sends requests and returns what came back without judging it;
``interpret`` turns an answer into a ``Success`` or a classified ``Failure``. OpenRouter
reports many failures inside HTTP 200 bodies, so the status alone never decides.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import msgspec
import requests

from herbx.errors import UsageError
from herbx.images import Prepared
from herbx.keys import safe_url

DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"
DEFAULT_MODEL = "openai/gpt-4o-mini"
DEFAULT_MAX_TOKENS = 2048

# Short names for the vision models people use for herbarium labels.
MODEL_ALIASES = {
    "gpt-4o-mini": "openai/gpt-4o-mini",
    "gpt-4o": "openai/gpt-4o",
    "gpt-4.1-mini": "openai/gpt-4.1-mini",
    "claude-sonnet": "anthropic/claude-sonnet-4.5",
    "claude-haiku": "anthropic/claude-haiku-4.5",
    "gemini-flash": "google/gemini-2.5-flash",
    "gemini-pro": "google/gemini-2.5-pro",
    "qwen-vl-72b": "qwen/qwen2.5-vl-72b-instruct",
    "qwen-vl-72b-free": "qwen/qwen2.5-vl-72b-instruct:free",
    "qwen-vl-32b-free": "qwen/qwen2.5-vl-32b-instruct:free",
    "llama-vision-free": "meta-llama/llama-3.2-11b-vision-instruct:free",
    "mistral-small-free": "mistralai/mistral-small-3.2-24b-instruct:free",
}

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 524, 529})

# Headers worth keeping in the ledger; the rest is noise or could identify the caller.
KEPT_HEADERS = (
    "content-type",
    "retry-after",
    "x-generation-id",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
)


def resolve_model(name: str) -> str:
    """Return the full model id for an alias or a full id; refuse unknown aliases."""
    name = name.strip()
    if name in MODEL_ALIASES:
        return MODEL_ALIASES[name]
    if "/" in name:
        return name
    known = ", ".join(sorted(MODEL_ALIASES))
    raise UsageError(
        f"unknown model alias {name!r}; use a full id such as openai/gpt-4o-mini "
        f"or one of: {known}"
    )


class Reply(msgspec.Struct, frozen=True):
    """An HTTP answer as received."""

    status: int
    text: str
    latency_ms: float
    headers: dict[str, str] = {}


class TransportFailure(Exception):
    """No HTTP answer: the connection failed, dropped or timed out.

    ``scope`` is ``run`` when no request to this endpoint can work as configured
    (a malformed URL or header), else ``attempt``.
    """

    def __init__(
        self, reason: str, message: str, latency_ms: float, scope: str = "attempt"
    ):
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.latency_ms = latency_ms
        self.scope = scope


def check_base_url(url: str) -> str:
    """Return ``url`` without a trailing slash, or refuse one that is not http(s)."""
    try:
        parts = urlsplit(url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018  (raises on a malformed port)
    except ValueError:
        valid = False
    if not valid:
        raise UsageError(
            f"--base-url {safe_url(url)!r} is not an http(s) URL; give one such as "
            f"{DEFAULT_BASE_URL}"
        )
    return url.rstrip("/")


class Client:
    """Sends chat completions to one endpoint, with connect and read timeouts."""

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 180.0,
        session: requests.Session | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self.session = session or _session(self.base_url)

    def chat(self, key: str | None, body: dict[str, Any]) -> Reply:
        """POST a chat completion and return the reply, whatever its status."""
        return self._send("POST", "/chat/completions", key, body)

    def key_info(self, key: str, timeout: float = 30.0) -> Reply:
        """GET /key: the calling key's limit, usage and remaining credit."""
        return self._send("GET", "/key", key, None, timeout)

    def create_key(
        self,
        management_key: str,
        name: str,
        limit: float | None,
        limit_reset: str | None = None,
        timeout: float = 30.0,
    ) -> Reply:
        """POST /keys with a management key: a new API key, returned once."""
        body = {"name": name, "limit": limit}
        if limit_reset:
            body["limit_reset"] = limit_reset
        return self._send("POST", "/keys", management_key, body, timeout)

    def list_keys(self, management_key: str, timeout: float = 30.0) -> Reply:
        """GET /keys with a management key: the account's most recent keys."""
        return self._send("GET", "/keys", management_key, None, timeout)

    def _send(
        self,
        method: str,
        path: str,
        key: str | None,
        body: dict[str, Any] | None,
        timeout: float | None = None,
    ) -> Reply:
        headers = {
            "Content-Type": "application/json",
            "X-Title": "herbx",
            "X-OpenRouter-Title": "herbx",
        }
        if key:
            headers["Authorization"] = f"Bearer {key}"
        data = msgspec.json.encode(body) if body is not None else None

        started = time.perf_counter()
        try:
            response = self.session.request(
                method,
                self.base_url + path,
                data=data,
                headers=headers,
                timeout=(self.timeout[0], timeout) if timeout else self.timeout,
            )
            text = response.text
        except (
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
            requests.exceptions.InvalidHeader,
            UnicodeError,
        ) as exc:
            raise _transport("invalid_request", exc, started, "run") from None
        except requests.exceptions.ConnectTimeout as exc:
            raise _transport("connect_timeout", exc, started) from None
        except requests.exceptions.ReadTimeout as exc:
            raise _transport("read_timeout", exc, started) from None
        except requests.exceptions.ConnectionError as exc:
            raise _transport("connection_error", exc, started) from None
        except requests.exceptions.RequestException as exc:
            raise _transport("transport_error", exc, started) from None

        kept = {
            name: value
            for name in KEPT_HEADERS
            if (value := response.headers.get(name)) is not None
        }
        return Reply(
            status=response.status_code,
            text=text,
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
            headers=kept,
        )


def _session(base_url: str) -> requests.Session:
    """A session that reads proxy and CA settings from the environment once.

    requests would otherwise re-read them on every request, and would also apply
    credentials from ~/.netrc, which replace the bearer key with basic auth.
    """
    session = requests.Session()
    session.proxies = requests.utils.get_environ_proxies(base_url)
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
    session.trust_env = False
    return session


def _transport(
    reason: str, exc: Exception, started: float, scope: str = "attempt"
) -> TransportFailure:
    # requests' messages name the URL and the OS error, never the headers; keep the
    # class name and the first line only.
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    latency = round((time.perf_counter() - started) * 1000, 3)
    return TransportFailure(reason, f"{type(exc).__name__}: {detail}", latency, scope)


def request_body(
    model: str,
    prompt: str,
    image: Prepared,
    *,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    detail: str = "high",
) -> dict[str, Any]:
    """Build the chat completion request for one sheet."""
    return {
        "model": model,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": prompt},
                    {
                        "type": "image_url",
                        "image_url": {"url": image.data_url(), "detail": detail},
                    },
                ],
            }
        ],
        "response_format": {"type": "json_object"},
        "max_completion_tokens": max_tokens,
        "temperature": 0,
        "usage": {"include": True},
    }


class Success(msgspec.Struct, frozen=True):
    """A completion that carries an answer to parse."""

    content: str
    usage: dict[str, Any] | None
    cost: float | None
    generation_id: str | None
    provider: str | None
    model: str | None


class Failure(msgspec.Struct, frozen=True):
    """An attempt that produced no usable answer.

    ``scope`` says what the failure is about: ``attempt`` (try again later),
    ``specimen`` (this sheet cannot succeed as sent), ``key`` (this key is dead or
    spent), ``account`` (no key of this account can help) or ``run`` (every sheet
    would fail the same way).
    """

    reason: str
    message: str
    scope: str
    retryable: bool
    status: int | None = None
    retry_after: float | None = None
    reset_at: float | None = None
    usage: dict[str, Any] | None = None
    cost: float | None = None
    generation_id: str | None = None
    provider: str | None = None
    model: str | None = None


def interpret(reply: Reply, now: float | None = None) -> Success | Failure:
    """Classify an HTTP reply from a chat completion endpoint."""
    now = time.time() if now is None else now
    try:
        body = msgspec.json.decode(reply.text) if reply.text else None
    except msgspec.DecodeError:
        body = None

    if not isinstance(body, dict):
        what = "an HTML page" if "<html" in reply.text[:500].lower() else "no JSON"
        retryable = reply.status == 200 or reply.status in RETRYABLE_STATUSES
        retryable = retryable or reply.status >= 500
        # A page instead of an API error on 401/403/404/407 comes from a proxy or a
        # wrong address: no key or retry can fix that.
        wrong_place = reply.status in (401, 403, 404, 405, 407)
        scope = "attempt" if retryable else "run" if wrong_place else "specimen"
        return Failure(
            reason=f"http_{reply.status}_not_json"
            if reply.status != 200
            else "invalid_body",
            message=f"HTTP {reply.status} with {what}"
            + ("; check --base-url" if wrong_place else ""),
            scope=scope,
            retryable=retryable,
            status=reply.status,
            retry_after=parse_retry_after(reply.headers.get("retry-after"), now),
        )

    billing = _billing(body)
    if reply.status != 200 or ("error" in body and not body.get("choices")):
        error = body.get("error") if isinstance(body.get("error"), dict) else {}
        code = error.get("code") if isinstance(error.get("code"), int) else None
        return _error_failure(
            reply,
            error,
            code or reply.status,
            in_body=reply.status == 200,
            now=now,
            billing=billing,
        )

    choices = body.get("choices")
    if not isinstance(choices, list) or not choices:
        return _attempt_failure("empty_choices", "reply has no choices", billing)
    choice = choices[0] if isinstance(choices[0], dict) else {}
    finish = choice.get("finish_reason")
    message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    content = message.get("content")

    if finish == "error":
        error = choice.get("error") if isinstance(choice.get("error"), dict) else {}
        text = error.get("message") or "the model stopped with an error"
        return _attempt_failure("finish_error", f"finish_reason error: {text}", billing)
    if finish == "length":
        return Failure(
            reason="truncated",
            message="the answer was cut off at the token limit (finish_reason length)",
            scope="specimen",
            retryable=False,
            status=200,
            **billing,
        )
    if finish == "content_filter":
        return Failure(
            reason="content_filter",
            message="the provider's content filter stopped the answer",
            scope="specimen",
            retryable=False,
            status=200,
            **billing,
        )
    if not isinstance(content, str) or not content.strip():
        what = "null" if content is None else "empty"
        return _attempt_failure(
            "empty_content", f"the answer's content is {what}", billing
        )

    return Success(content=content, **billing)


def _billing(body: dict[str, Any]) -> dict[str, Any]:
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else None
    cost = usage.get("cost") if usage else None
    # A missing or non-numeric cost is unknown, never zero.
    if isinstance(cost, bool) or not isinstance(cost, int | float):
        cost = None
    generation_id = body.get("id") if isinstance(body.get("id"), str) else None
    return {
        "usage": usage,
        "cost": float(cost) if cost is not None else None,
        "generation_id": generation_id,
        "provider": body.get("provider")
        if isinstance(body.get("provider"), str)
        else None,
        "model": body.get("model") if isinstance(body.get("model"), str) else None,
    }


def _attempt_failure(reason: str, message: str, billing: dict[str, Any]) -> Failure:
    return Failure(
        reason=reason,
        message=message,
        scope="attempt",
        retryable=True,
        status=200,
        **billing,
    )


def _error_failure(
    reply: Reply,
    error: dict[str, Any],
    code: int,
    *,
    in_body: bool,
    now: float,
    billing: dict[str, Any],
) -> Failure:
    text = str(error.get("message") or f"HTTP {reply.status}")
    metadata = error.get("metadata") if isinstance(error.get("metadata"), dict) else {}
    error_type = metadata.get("error_type")
    raw = metadata.get("raw")
    if raw and isinstance(raw, str):
        text = f"{text}: {raw[:300]}"
    prefix = "error in HTTP 200 body: " if in_body else ""
    meta_headers = (
        metadata.get("headers") if isinstance(metadata.get("headers"), dict) else {}
    )
    retry_after = parse_retry_after(reply.headers.get("retry-after"), now)
    reset_at = parse_reset_ms(meta_headers.get("X-RateLimit-Reset"))
    common = {
        "status": reply.status,
        "retry_after": retry_after,
        "reset_at": reset_at,
        **billing,
    }
    lowered = text.lower()

    if code == 401:
        return Failure("unauthorized", prefix + text, "key", False, **common)
    if code == 402:
        return Failure(
            "insufficient_credits", prefix + text, "account", False, **common
        )
    if code == 403:
        if "limit" in lowered and "key" in lowered:
            return Failure("key_limit", prefix + text, "key", False, **common)
        return Failure("forbidden", prefix + text, "specimen", False, **common)
    if code == 404:
        return Failure("not_found", prefix + text, "run", False, **common)
    if code == 413:
        return Failure("payload_too_large", prefix + text, "specimen", False, **common)
    if code == 429:
        if "free-models-per-day" in lowered:
            return Failure("daily_cap", prefix + text, "account", False, **common)
        return Failure("rate_limited", prefix + text, "attempt", True, **common)
    if code in RETRYABLE_STATUSES or code >= 500:
        return Failure(f"http_{code}", prefix + text, "attempt", True, **common)
    reason = str(error_type) if error_type else f"http_{code}"
    return Failure(reason, prefix + text, "specimen", False, **common)


# Waits the server asks for are honoured but clamped: a bogus header must not park a
# run for a day, and a negative one must not make it hot-loop.
MAX_RETRY_AFTER = 600.0


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Return seconds to wait from a Retry-After header (seconds or HTTP date)."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - now
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def parse_reset_ms(value: Any) -> float | None:
    """Return the epoch seconds of an ``X-RateLimit-Reset`` given in milliseconds."""
    try:
        millis = float(value)
    except (TypeError, ValueError):
        return None
    if millis != millis or millis <= 0:
        return None
    return millis / 1000.0


def utc_text(epoch: float) -> str:
    """Format epoch seconds as a readable UTC time for messages."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
