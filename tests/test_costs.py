"""Spend tallies against the fake server's own accounting."""

from __future__ import annotations

import csv
import io
import json

import pytest

from herbx.fakeserver import Fault, hash_key
from herbx.keys import fingerprint

from .conftest import KEY, MANAGEMENT

FAST = ["--backoff", "0.01", "--confirm-pause", "0.01", "--validate-after", "0"]


@pytest.fixture
def mixed_run(herbx, sheets, fake):
    """A run with a key rotation, billed failures and an unpriced hanging request."""
    fake.add_management_key(MANAGEMENT)
    herbx.env["OPENROUTER_PROVISIONING_KEY"] = MANAGEMENT
    fake.key_fails_after(KEY, 8)
    fake.script(
        [
            Fault(kind="null_content"),  # billed for the prompt, retried
            Fault(kind="truncated"),  # billed, fails the specimen
            # No answer in time: unknown cost. Longer than the test, so the fake
            # never bills it while we compare.
            Fault(kind="hang", seconds=60),
            Fault(status=503),
        ]
    )
    result = herbx("run", str(sheets), "--run-id", "m1", "--read-timeout", "0.5", *FAST)
    assert result.returncode == 0, result.stderr
    return herbx


def test_costs_by_key_equal_what_the_fake_billed_each_key(mixed_run, fake):
    result = mixed_run("costs", "--by", "key", "--format", "json")

    rows = {row["key"]: row for row in map(json.loads, result.stdout.splitlines())}
    billed = fake.cost_by_key()
    for secret in (KEY, *fake.provisioned):
        assert rows[fingerprint(secret)]["spend_usd"] == pytest.approx(
            billed[hash_key(secret)], abs=0.005
        )
        assert round(rows[fingerprint(secret)]["spend_usd"], 2) == round(
            billed[hash_key(secret)], 2
        )
    assert round(rows["total"]["spend_usd"], 2) == round(fake.total_cost(), 2)
    assert rows["total"]["spend_usd"] == pytest.approx(fake.total_cost(), abs=1e-9)


def test_costs_count_requests_successes_and_unknown_cost_attempts(mixed_run, fake):
    result = mixed_run("costs", "--by", "run", "--format", "json")

    total = json.loads(result.stdout.splitlines()[-1])
    chats = [r for r in fake.requests if r.path.endswith("/chat/completions")]
    sent = mixed_run.rows("SELECT count(*) FROM events WHERE type='request_sent'")[0][0]
    assert total["requests"] == sent
    assert total["successes"] == 19
    assert total["unknown_cost_attempts"] >= 1  # the hanging request
    priced = mixed_run.rows(
        "SELECT count(*) FROM events "
        "WHERE type='response_received' AND cost IS NOT NULL"
    )[0][0]
    assert total["known_cost_attempts"] == priced
    assert priced + total["unknown_cost_attempts"] == sent
    assert len([r for r in chats if r.cost > 0]) == priced


def test_costs_by_model_and_day_add_up_to_the_same_total(mixed_run):
    totals = set()
    for by in ("run", "key", "model", "day"):
        rows = list(
            csv.DictReader(
                io.StringIO(mixed_run("costs", "--by", by, "--format", "csv").stdout)
            )
        )
        totals.add(rows[-1]["spend_usd"])
        assert sum(float(r["spend_usd"]) for r in rows[:-1]) == pytest.approx(
            float(rows[-1]["spend_usd"])
        )
    assert len(totals) == 1


@pytest.mark.parametrize("name", ["costs.csv", "audit.log", "environment.json"])
def test_projections_rebuild_to_the_same_bytes(mixed_run, name):
    first = mixed_run("project", name, "--run", "m1")
    second = mixed_run("project", name, "--run", "m1")

    assert first.returncode == 0, first.stderr
    assert first.stdout and first.stdout == second.stdout


def test_the_audit_log_projection_is_the_audit_of_that_run(mixed_run):
    log = mixed_run("project", "audit.log", "--run", "m1").stdout

    assert log == mixed_run("audit", "--run", "m1").stdout
    assert "new key provisioned" in log
