"""The HTTP edge: what each kind of answer means, with `responses` faking the wire."""

from __future__ import annotations

import json

import pytest
import requests
import responses

from herbx.errors import UsageError
from herbx.openrouter import (
    MAX_RETRY_AFTER,
    Client,
    Failure,
    Reply,
    Success,
    TransportFailure,
    interpret,
    parse_retry_after,
    resolve_model,
)

URL = "https://openrouter.test/api/v1"
NOW = 1_760_000_000.0


def completion(content="{}", finish="stop", cost=0.0012, **extra) -> dict:
    body = {
        "id": "gen-1760000000-abcdefghijklmnopqrst",
        "provider": "OpenAI",
        "model": "openai/gpt-4o-mini",
        "choices": [
            {
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish,
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "cost": cost},
    }
    body.update(extra)
    return body


def reply(status: int, body, headers=None) -> Reply:
    text = body if isinstance(body, str) else json.dumps(body)
    return Reply(status=status, text=text, latency_ms=1.0, headers=headers or {})


def error_body(code: int, message: str, **metadata) -> dict:
    return {"error": {"code": code, "message": message, "metadata": metadata}}


@responses.activate
def test_the_client_sends_the_bearer_key_and_returns_the_raw_reply():
    responses.post(f"{URL}/chat/completions", json=completion(), status=200)

    answer = Client(URL).chat("sk-or-v1-secret", {"model": "m"})

    sent = responses.calls[0].request
    assert sent.headers["Authorization"] == "Bearer sk-or-v1-secret"
    assert json.loads(sent.body) == {"model": "m"}
    assert answer.status == 200 and json.loads(answer.text)["id"].startswith("gen-")


@responses.activate
def test_connection_errors_and_timeouts_become_transport_failures_without_the_key():
    responses.post(f"{URL}/chat/completions", body=requests.exceptions.ConnectTimeout())
    with pytest.raises(TransportFailure) as caught:
        Client(URL).chat("sk-or-v1-secret", {})
    assert caught.value.reason == "connect_timeout"
    assert "secret" not in caught.value.message

    responses.replace(
        responses.POST,
        f"{URL}/chat/completions",
        body=requests.exceptions.ReadTimeout(),
    )
    with pytest.raises(TransportFailure) as caught:
        Client(URL).chat("sk-or-v1-secret", {})
    assert caught.value.reason == "read_timeout"


def test_the_client_uses_separate_connect_and_read_timeouts():
    client = Client(URL, connect_timeout=3, read_timeout=90)
    assert client.timeout == (3, 90)


def test_a_normal_completion_is_a_success_with_its_cost():
    outcome = interpret(reply(200, completion('{"a": 1}')))

    assert isinstance(outcome, Success)
    assert outcome.content == '{"a": 1}'
    assert outcome.cost == 0.0012
    assert outcome.generation_id.startswith("gen-")


def test_a_missing_cost_is_unknown_never_zero():
    body = completion()
    del body["usage"]["cost"]

    assert interpret(reply(200, body)).cost is None
    assert interpret(reply(200, completion(cost=0))).cost == 0.0


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (error_body(502, "Provider returned error", raw="upstream down"), "http_502"),
        ({**completion(), "choices": []}, "empty_choices"),
        (completion(finish="error"), "finish_error"),
        (completion(content=None), "empty_content"),
        (completion(content="  "), "empty_content"),
        ("<html><body>Bad gateway</body></html>", "invalid_body"),
    ],
    ids=["error body", "no choices", "finish error", "null", "blank", "html"],
)
def test_failures_inside_http_200_are_retryable_failures(body, reason):
    outcome = interpret(reply(200, body))

    assert isinstance(outcome, Failure)
    assert (outcome.reason, outcome.retryable) == (reason, True)


def test_a_truncated_answer_is_a_failure_that_is_not_retried():
    outcome = interpret(reply(200, completion('{"a": {"value": "x', finish="length")))

    assert (outcome.reason, outcome.retryable, outcome.scope) == (
        "truncated",
        False,
        "specimen",
    )


def test_a_billed_failure_keeps_its_cost():
    outcome = interpret(reply(200, completion(content=None, cost=0.0004)))

    assert outcome.cost == 0.0004


@pytest.mark.parametrize(
    ("status", "message", "reason", "scope", "retryable"),
    [
        (400, "Invalid image", "http_400", "specimen", False),
        (401, "User not found.", "unauthorized", "key", False),
        (402, "Insufficient credits", "insufficient_credits", "account", False),
        (403, "Key limit exceeded (total limit)", "key_limit", "key", False),
        (403, "Flagged by moderation", "forbidden", "specimen", False),
        (404, "No endpoints found", "not_found", "run", False),
        (408, "Timeout", "http_408", "attempt", True),
        (413, "Too large", "payload_too_large", "specimen", False),
        (429, "Rate limit exceeded", "rate_limited", "attempt", True),
        (503, "Unavailable", "http_503", "attempt", True),
        (524, "Provider timed out", "http_524", "attempt", True),
        (529, "Overloaded", "http_529", "attempt", True),
    ],
)
def test_error_statuses_are_classified_by_what_they_mean(
    status, message, reason, scope, retryable
):
    outcome = interpret(reply(status, error_body(status, message)))

    assert (outcome.reason, outcome.scope, outcome.retryable) == (
        reason,
        scope,
        retryable,
    )


def test_an_error_type_names_a_bad_request():
    body = error_body(400, "bad", error_type="image_too_large")

    assert interpret(reply(400, body)).reason == "image_too_large"


def test_the_free_models_daily_cap_is_account_wide_with_its_reset_time():
    body = error_body(
        429,
        "Rate limit exceeded: free-models-per-day",
        headers={"X-RateLimit-Reset": "1760054400000"},
    )

    outcome = interpret(reply(429, body))

    assert (outcome.reason, outcome.scope) == ("daily_cap", "account")
    assert outcome.reset_at == 1_760_054_400.0


def test_an_html_502_page_is_retryable():
    outcome = interpret(reply(502, "<!DOCTYPE html><html><h1>502</h1></html>"))

    assert outcome.retryable and "HTML" in outcome.message


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("7", 7.0),
        ("2.5", 2.5),
        ("-3", 0.0),
        ("999999", MAX_RETRY_AFTER),
        ("soon", None),
        ("Thu, 09 Oct 2025 08:53:40 GMT", 20.0),
    ],
)
def test_retry_after_is_read_as_seconds_or_a_date_and_clamped(value, seconds):
    assert parse_retry_after(value, now=NOW) == seconds


def test_model_aliases_resolve_and_unknown_aliases_are_refused():
    assert resolve_model("qwen-vl-72b-free") == "qwen/qwen2.5-vl-72b-instruct:free"
    assert resolve_model("anthropic/claude-x") == "anthropic/claude-x"
    with pytest.raises(UsageError, match="unknown model alias 'gtp4'"):
        resolve_model("gtp4")
