"""Faults of every kind under concurrency: retried, saved once, never falsely."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from herbx.answers import parse
from herbx.fakeserver import Fault
from herbx.throttle import Throttle

from .conftest import RECORDED

FAST = ["--backoff", "0.01", "--validate-after", "0"]


def chats(fake) -> list:
    return [r for r in fake.requests if r.path.endswith("/chat/completions")]


def recorded_fields() -> dict[str, dict]:
    found = {}
    for line in RECORDED.read_text().splitlines():
        item = json.loads(line)
        content = item["response"]["choices"][0]["message"]["content"]
        found[item["sha256"]] = parse(content)[0]
    return found


def test_a_fault_mixed_run_saves_every_retryable_specimen_once_and_no_false_success(
    herbx, sheets, fake
):
    soon = datetime.now(UTC) + timedelta(seconds=1)
    retryable = [
        Fault(status=429, retry_after="1"),
        Fault(status=429, retry_after=format_datetime(soon, usegmt=True)),
        Fault(status=429, ratelimit_reset_ms=int((time.time() + 1) * 1000)),
        Fault(status=503, times=2),
        Fault(kind="error_body"),
        Fault(kind="empty_choices"),
        Fault(kind="finish_error"),
        Fault(kind="null_content"),
        Fault(kind="empty_content"),
        Fault(status=502, html=True),
        Fault(kind="hang", seconds=30),
        Fault(kind="drop"),
    ]
    final = [
        Fault(kind="truncated"),
        Fault(status=400, error_type="invalid_image", message="Invalid image"),
        Fault(status=413),
        Fault(kind="prose"),
    ]
    fake.script([Fault(kind="fenced"), *retryable, *final])

    result = herbx(
        "run",
        str(sheets),
        "--run-id",
        "mix",
        "--concurrency",
        "4",
        "--read-timeout",
        "1",
        "--max-attempts",
        "30",
        *FAST,
    )

    assert result.returncode == 0, result.stderr
    assert fake.pending_faults() == 0
    lines = [
        json.loads(line)
        for line in (herbx.workdir / "runs/mix/raw.jsonl").read_text().splitlines()
    ]
    assert len(lines) == 20
    assert len({line["specimen_id"] for line in lines}) == 20
    failures = sorted(line["error"].split(":")[0] for line in lines if "error" in line)
    assert failures == [
        "invalid_image",
        "payload_too_large",
        "truncated",
        "unparseable",
    ]

    expected = recorded_fields()
    for line in lines:
        if "dwc" not in line:
            continue
        if line["specimen_id"] in expected:
            assert line["dwc"] == expected[line["specimen_id"]]
        else:
            assert line["dwc"]["scientificName"]["value"] == "Synthetic fake answer"
    saved = herbx.rows(
        "SELECT specimen_id, count(*) FROM events WHERE type='result_saved' "
        "GROUP BY specimen_id"
    )
    assert len(saved) == 16 and {count for _, count in saved} == {1}
    assert herbx.rows("SELECT count(*) FROM events WHERE type='retry_scheduled'")[0][
        0
    ] >= len(retryable)


def test_the_free_model_daily_cap_stops_the_run_with_its_reset_time(
    herbx, sheets, fake
):
    fake.script([Fault.free_models_per_day(reset_ms=1_900_000_000_000)])

    result = herbx("run", str(sheets), "--run-id", "cap", *FAST)

    assert result.returncode == 1
    assert "resets at 2030-03-17 17:46:40Z" in result.stderr
    assert len(chats(fake)) == 1


def test_a_model_without_image_input_stops_the_run_at_the_first_specimen(
    herbx, sheets, fake
):
    fake.script(
        [Fault(status=404, message="No endpoints found that support image input")]
    )

    result = herbx("run", str(sheets), "--concurrency", "8", *FAST)

    assert result.returncode == 1
    assert "image input" in result.stderr
    assert len(chats(fake)) == 1


def test_requests_per_minute_are_capped(herbx, sheets, fake):
    result = herbx(
        "run",
        str(sheets),
        "--limit",
        "6",
        "--rpm",
        "60",
        "--concurrency",
        "4",
        *FAST,
    )

    assert result.returncode == 0, result.stderr
    arrivals = sorted(r.time for r in chats(fake))
    # 60 a minute is one a second. Requests leave on that beat, but each first
    # commits its request_sent event (an fsync), so on a busy disk one may reach the
    # server late and close up on the next: the beat is checked over every window
    # of three requests rather than every pair.
    windows = [b - a for a, b in zip(arrivals, arrivals[2:], strict=False)]
    assert len(arrivals) == 6
    assert min(windows) >= 1.5
    assert arrivals[-1] - arrivals[0] >= 5 * 1.0 * 0.95


def test_a_budget_stops_the_run_before_it_is_crossed_and_a_larger_one_resumes(
    herbx, sheets, fake
):
    stopped = herbx(
        "run",
        str(sheets),
        "--run-id",
        "b1",
        "--budget",
        "0.03",
        "--concurrency",
        "4",
        *FAST,
    )

    assert stopped.returncode == 1
    assert "stopping before the budget of $0.03" in stopped.stderr
    assert fake.total_cost() <= 0.03
    resumed = herbx("run", str(sheets), "--run-id", "b1", "--budget", "1", *FAST)
    assert resumed.returncode == 0, resumed.stderr
    assert "0 pending" in resumed.stdout


def test_estimate_uses_this_ledgers_history_of_the_model(herbx, sheets, fake):
    before = herbx("estimate", str(sheets))
    herbx("run", str(sheets), "--limit", "10", *FAST)

    after = herbx("estimate", str(sheets), "--key-limit", "0.05")

    assert "price table" in before.stdout
    assert "this ledger" in after.stdout
    spend = fake.total_cost()
    assert f"${spend / 10:,.4f}" in after.stdout
    assert f"${spend * 2:,.4f}" in after.stdout
    assert "free-tier days at 50/day    1" in after.stdout


def test_the_throttle_slows_after_429s_and_speeds_back_up():
    now = [0.0]
    throttle = Throttle(rpm=None, first_backoff=1.0, clock=lambda: now[0])

    assert throttle.reserve() == 0.0
    throttle.limited(pause=5.0)
    assert throttle.reserve() == pytest.approx(5.0)
    throttle.limited(pause=None)
    assert throttle.interval == 2.0
    for _ in range(20):
        throttle.succeeded()
    assert throttle.interval == 0.0


def test_the_throttle_never_goes_faster_than_the_rpm_cap():
    now = [0.0]
    throttle = Throttle(rpm=60, clock=lambda: now[0])

    waits = [throttle.reserve() for _ in range(3)]

    assert waits == [0.0, 1.0, 2.0]
    throttle.limited(pause=None)
    for _ in range(20):
        throttle.succeeded()
    assert throttle.interval == 1.0
