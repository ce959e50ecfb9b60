"""Tests of the fake OpenRouter itself, over real HTTP with requests."""

import base64
import io
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from PIL import Image, ImageOps

from herbx.fakeserver import FakeOpenRouter, Fault, cost_of, hash_key

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
RECORDED = SAMPLES / "recorded" / "gpt-4o-mini-2024-07-18.jsonl"
SPECIMENS = SAMPLES / "specimens"
RECORDED_SHA = "000e426d6ed12c347a937c47f568088a8daa32cdea3127d90f1eca5653831c84"
UNRECORDED_SHA = "0a3108d66f7e04b8245781a8ed99d30c4f64e5ecc7a234e1913b21407b3afa7d"
KEY = "sk-or-v1-" + "a" * 64
OTHER_KEY = "sk-or-v1-" + "b" * 64
MANAGER = "sk-or-v1-" + "m" * 64
MODEL = "openai/gpt-4o-mini"


def data_url(image: Image.Image, fmt: str = "JPEG") -> str:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, fmt, quality=80)
    mime = "jpeg" if fmt == "JPEG" else fmt.lower()
    return f"data:image/{mime};base64," + base64.b64encode(buffer.getvalue()).decode()


def prepared(sha: str) -> str:
    """Return a sheet as herbx sends it: upright, at most 1024 pixels, re-encoded."""
    image = ImageOps.exif_transpose(Image.open(SPECIMENS / f"{sha}.jpg"))
    image.thumbnail((1024, 1024))
    return data_url(image)


@pytest.fixture(scope="module")
def recorded_image() -> str:
    return prepared(RECORDED_SHA)


@pytest.fixture
def fake():
    with FakeOpenRouter(recorded=RECORDED, specimens=SPECIMENS) as server:
        server.add_key(KEY)
        server.add_management_key(MANAGER)
        yield server


def chat_body(image_url: str, model: str = MODEL) -> dict:
    content = [
        {"type": "text", "text": "Transcribe this sheet as Darwin Core JSON."},
        {"type": "image_url", "image_url": {"url": image_url, "detail": "high"}},
    ]
    return {"model": model, "messages": [{"role": "user", "content": content}]}


def complete(fake, image_url, key=KEY, timeout=10, **body) -> requests.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return requests.post(
        f"{fake.url}/chat/completions",
        json={**chat_body(image_url), **body},
        headers=headers,
        timeout=timeout,
    )


def recorded_content(sha: str) -> str:
    for line in RECORDED.read_text().splitlines():
        row = json.loads(line)
        if row["sha256"] == sha:
            return row["response"]["choices"][0]["message"]["content"]
    raise KeyError(sha)


def test_a_resized_recorded_sheet_gets_the_recorded_answer(fake, recorded_image):
    response = complete(fake, recorded_image)

    assert response.status_code == 200
    body = response.json()
    assert re.fullmatch(r"gen-\d+-[A-Za-z0-9]{20}", body["id"])
    assert body["provider"] == "OpenAI"
    assert body["model"] == MODEL
    assert body["object"] == "chat.completion"
    choice = body["choices"][0]
    assert choice["message"]["content"] == recorded_content(RECORDED_SHA)
    assert choice["finish_reason"] == "stop"
    assert choice["native_finish_reason"] == "stop"
    usage = body["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (39630, 876)
    assert usage["total_tokens"] == 40506
    assert usage["cost"] == pytest.approx(0.0064701)
    assert usage["is_byok"] is False
    assert fake.requests[-1].specimen == RECORDED_SHA
    assert fake.requests[-1].key == KEY


def test_an_unknown_image_gets_a_synthetic_answer_marked_as_fake(fake):
    noise = Image.effect_noise((800, 600), 64)

    response = complete(fake, data_url(noise, "PNG"))

    assert response.status_code == 200
    answer = json.loads(response.json()["choices"][0]["message"]["content"])
    assert answer["scientificName"]["value"] == "Synthetic fake answer"
    remark = answer["occurrenceRemarks"]["value"]
    assert remark == "fake server: no recording for unknown image"
    assert fake.requests[-1].specimen is None


def test_a_known_sheet_without_recording_is_named_in_the_synthetic_answer(fake):
    first = complete(fake, prepared(UNRECORDED_SHA)).json()
    second = complete(fake, prepared(UNRECORDED_SHA)).json()

    answer = json.loads(first["choices"][0]["message"]["content"])
    remark = answer["occurrenceRemarks"]["value"]
    assert remark == f"fake server: no recording for {UNRECORDED_SHA}"
    assert first["choices"] == second["choices"]
    assert first["usage"] == second["usage"]


def test_each_key_is_billed_for_its_own_completions(fake, recorded_image):
    fake.add_key(OTHER_KEY)

    costs = [
        complete(fake, recorded_image, key=k).json()["usage"]["cost"]
        for k in (KEY, KEY, OTHER_KEY)
    ]

    assert fake.cost_by_key() == {
        hash_key(KEY): pytest.approx(costs[0] + costs[1]),
        hash_key(OTHER_KEY): pytest.approx(costs[2]),
    }
    assert fake.total_cost() == pytest.approx(sum(costs))
    info = requests.get(f"{fake.url}/key", headers={"Authorization": f"Bearer {KEY}"})
    assert info.json()["data"]["usage"] == pytest.approx(costs[0] + costs[1])
    assert info.json()["data"]["label"] == "sk-or-v1-aaa...aaa"
    assert [r.key for r in fake.requests] == [KEY, KEY, OTHER_KEY, KEY]


def test_free_models_cost_nothing_and_the_price_table_is_deterministic():
    assert cost_of("openai/gpt-4o-mini", 1_000_000, 1_000_000) == 0.75
    assert cost_of("meta-llama/llama-3.2-11b-vision-instruct:free", 5000, 500) == 0.0


def test_a_missing_key_and_an_unknown_key_are_refused_with_401(fake, recorded_image):
    missing = complete(fake, recorded_image, key=None)
    unknown = complete(fake, recorded_image, key="sk-or-v1-" + "0" * 64)

    assert missing.status_code == 401
    assert missing.json()["error"]["message"] == "No auth credentials found"
    assert unknown.status_code == 401
    assert unknown.json()["error"] == {"code": 401, "message": "User not found."}
    assert fake.total_cost() == 0.0


def test_a_key_is_refused_with_403_once_its_limit_is_spent(fake, recorded_image):
    fake.add_key(OTHER_KEY, limit=0.01)

    statuses = [
        complete(fake, recorded_image, key=OTHER_KEY).status_code for _ in range(3)
    ]

    assert statuses == [200, 200, 403]
    refused = fake.requests[-1]
    assert (refused.status, refused.cost) == (403, 0.0)
    response = complete(fake, recorded_image, key=OTHER_KEY)
    assert response.json()["error"]["message"] == "Key limit exceeded (total limit)"


@pytest.mark.parametrize("mode", ["ok", "data.key"])
def test_a_provisioned_key_works_for_completions(fake, recorded_image, mode):
    fake.provision_mode = mode
    headers = {"Authorization": f"Bearer {MANAGER}"}

    created = requests.post(
        f"{fake.url}/keys",
        headers=headers,
        json={"name": "run-1", "limit": 1.0},
        timeout=5,
    )

    assert created.status_code == 201
    body = created.json()
    secret = body["key"] if mode == "ok" else body["data"]["key"]
    assert re.fullmatch(r"sk-or-v1-[0-9a-f]{64}", secret)
    assert body["data"]["hash"] == hash_key(secret)
    assert body["data"]["limit"] == 1.0
    assert fake.provisioned == [secret]
    assert complete(fake, recorded_image, key=secret).status_code == 200
    listed = requests.get(f"{fake.url}/keys", headers=headers, timeout=5).json()
    assert [k["name"] for k in listed["data"]] == ["run-1", "sk-or-v1-aaa...aaa"]


def test_a_regular_key_cannot_manage_keys(fake):
    response = requests.post(
        f"{fake.url}/keys",
        json={"name": "x"},
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=5,
    )

    assert response.status_code == 403
    message = response.json()["error"]["message"]
    assert message == "Only management keys can perform this operation"


def test_a_disabled_or_deleted_key_answers_401(fake, recorded_image):
    headers = {"Authorization": f"Bearer {MANAGER}"}
    made = requests.post(f"{fake.url}/keys", json={"name": "n"}, headers=headers)
    secret, key_hash = made.json()["key"], made.json()["data"]["hash"]

    requests.patch(
        f"{fake.url}/keys/{key_hash}", json={"disabled": True}, headers=headers
    )
    disabled = complete(fake, recorded_image, key=secret).status_code
    requests.patch(
        f"{fake.url}/keys/{key_hash}", json={"disabled": False}, headers=headers
    )
    enabled = complete(fake, recorded_image, key=secret).status_code
    requests.delete(f"{fake.url}/keys/{key_hash}", headers=headers)
    deleted = complete(fake, recorded_image, key=secret).status_code

    assert (disabled, enabled, deleted) == (401, 200, 401)


def test_failing_provisioning_answers_500_and_a_hang_does_not_block_stop():
    fake = FakeOpenRouter().start()
    fake.add_management_key(MANAGER)
    headers = {"Authorization": f"Bearer {MANAGER}"}
    fake.provision_mode = "fail"
    failed = requests.post(f"{fake.url}/keys", json={"name": "x"}, headers=headers)
    fake.provision_mode = "hang"

    with pytest.raises(requests.Timeout):
        requests.post(
            f"{fake.url}/keys", json={"name": "x"}, headers=headers, timeout=0.3
        )
    started = time.monotonic()
    fake.stop()

    assert failed.status_code == 500
    assert time.monotonic() - started < 2
    assert fake.provisioned == []


def test_a_scripted_429_carries_retry_after_then_service_resumes(fake, recorded_image):
    fake.script([Fault(status=429, retry_after="2"), Fault(status=503, times=2)])

    responses = [complete(fake, recorded_image) for _ in range(4)]

    assert [r.status_code for r in responses] == [429, 503, 503, 200]
    assert responses[0].headers["Retry-After"] == "2"
    assert responses[0].json()["error"]["code"] == 429
    assert fake.pending_faults() == 0
    assert [r.cost > 0 for r in fake.requests] == [False, False, False, True]


def test_the_free_model_daily_cap_reports_its_reset_in_epoch_ms(fake, recorded_image):
    fake.script([Fault.free_models_per_day(reset_ms=1_767_225_600_000)])

    response = complete(fake, recorded_image)

    error = response.json()["error"]
    assert response.status_code == 429
    assert "Retry-After" not in response.headers
    assert error["message"].startswith("Rate limit exceeded: free-models-per-day")
    assert error["metadata"]["headers"]["X-RateLimit-Reset"] == "1767225600000"


def test_an_html_error_page_comes_as_text_html(fake, recorded_image):
    fake.script([Fault(status=502, html=True)])

    response = complete(fake, recorded_image)

    assert response.status_code == 502
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.text.startswith("<!DOCTYPE html>")


def test_a_finish_error_arrives_inside_a_200_and_bills_the_prompt(fake, recorded_image):
    fake.script([Fault(kind="finish_error")])

    body = complete(fake, recorded_image).json()

    choice = body["choices"][0]
    assert choice["finish_reason"] == "error"
    assert choice["error"]["code"] == 502
    assert body["usage"]["completion_tokens"] == 0
    assert fake.total_cost() == body["usage"]["cost"] == cost_of(MODEL, 39630, 0)


def test_an_error_body_arrives_inside_a_200_without_choices(fake, recorded_image):
    fake.script([Fault(kind="error_body", raw="overloaded")])

    response = complete(fake, recorded_image)

    assert response.status_code == 200
    assert "choices" not in response.json()
    assert response.json()["error"]["metadata"]["raw"] == "overloaded"
    assert fake.total_cost() == 0.0


def test_a_truncated_answer_is_cut_inside_the_json(fake, recorded_image):
    fake.script([Fault(kind="truncated")])

    choice = complete(fake, recorded_image).json()["choices"][0]

    assert choice["finish_reason"] == "length"
    assert recorded_content(RECORDED_SHA).startswith(choice["message"]["content"])
    with pytest.raises(json.JSONDecodeError):
        json.loads(choice["message"]["content"])


def test_a_fenced_answer_wraps_the_recorded_json_in_prose(fake, recorded_image):
    fake.script([Fault(kind="fenced")])

    content = complete(fake, recorded_image).json()["choices"][0]["message"]["content"]

    prose, fence = content.split("```json\n")
    assert prose.strip()
    assert json.loads(fence.removesuffix("\n```")) == json.loads(
        recorded_content(RECORDED_SHA)
    )


def test_a_hung_request_times_out_and_the_server_still_stops_quickly(recorded_image):
    fake = FakeOpenRouter(RECORDED, SPECIMENS).start()
    fake.add_key(KEY)
    fake.script([Fault(kind="hang", seconds=30)])

    with pytest.raises(requests.Timeout):
        complete(fake, recorded_image, timeout=0.3)
    started = time.monotonic()
    fake.stop()

    assert time.monotonic() - started < 2
    assert fake.total_cost() == 0.0


def test_a_dropped_connection_raises_a_connection_error(fake, recorded_image):
    fake.script([Fault(kind="drop")])

    with pytest.raises(requests.ConnectionError):
        complete(fake, recorded_image)

    assert fake.requests[-1].status == 0
    assert complete(fake, recorded_image).status_code == 200


def test_a_key_dies_after_n_completions_and_a_transient_401_clears(
    fake, recorded_image
):
    fake.key_fails_after(KEY, n=2)
    fake.add_key(OTHER_KEY)
    fake.transient_401(OTHER_KEY, 1)

    dying = [complete(fake, recorded_image).status_code for _ in range(3)]
    flaky = [
        complete(fake, recorded_image, key=OTHER_KEY).status_code for _ in range(2)
    ]

    assert dying == [200, 200, 401]
    assert flaky == [401, 200]


def test_bad_requests_are_refused_before_billing(fake, recorded_image):
    broken = "data:image/jpeg;base64," + base64.b64encode(b"not an image").decode()

    invalid = complete(fake, broken)
    missing = complete(fake, recorded_image, model="openai/does-not-exist")
    no_model = complete(fake, recorded_image, model=None)

    assert invalid.status_code == 400
    assert invalid.json()["error"]["metadata"]["error_type"] == "invalid_image"
    assert missing.status_code == 404
    message = "No endpoints found for openai/does-not-exist."
    assert missing.json()["error"]["message"] == message
    assert no_model.status_code == 400
    assert fake.total_cost() == 0.0


def test_a_served_generation_can_be_looked_up(fake, recorded_image):
    body = complete(fake, recorded_image).json()
    headers = {"Authorization": f"Bearer {KEY}"}

    found = requests.get(
        f"{fake.url}/generation", params={"id": body["id"]}, headers=headers
    )
    unknown = requests.get(
        f"{fake.url}/generation", params={"id": "gen-0-x"}, headers=headers
    )

    assert found.json()["data"]["total_cost"] == body["usage"]["cost"]
    assert found.json()["data"]["tokens_prompt"] == 39630
    assert unknown.status_code == 404


def test_the_cli_announces_its_url_stays_quiet_and_stops_on_sigterm(recorded_image):
    repo = Path(__file__).resolve().parents[1]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "herbx.fakeserver",
            "--recorded",
            str(RECORDED),
            "--specimens",
            str(SPECIMENS),
            "--key",
            KEY,
        ],
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        url = re.fullmatch(r"listening on (http://127\.0\.0\.1:\d+/api/v1)\n", line)
        assert url, line
        fake = type("Url", (), {"url": url.group(1)})
        assert complete(fake, recorded_image).status_code == 200
        assert complete(fake, recorded_image, key=OTHER_KEY).status_code == 401
    finally:
        process.terminate()
        out, err = process.communicate(timeout=5)

    assert process.returncode == 0
    assert KEY not in out + err
    assert out + err == ""
