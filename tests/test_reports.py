"""DuckDB reports over a ledger of several runs, checked against the events."""

from __future__ import annotations

import json
import statistics

import pytest

from herbx.fakeserver import Fault

from .conftest import KEY, MANAGEMENT

FAST = ["--backoff", "0.01", "--confirm-pause", "0.01", "--validate-after", "0"]


@pytest.fixture
def ledger(herbx, sheets, fake):
    """Three runs: clean; with failures and retries; with a key rotation."""
    fake.add_management_key(MANAGEMENT)
    herbx.env["OPENROUTER_PROVISIONING_KEY"] = MANAGEMENT
    assert herbx("run", str(sheets), "--run-id", "a", *FAST).returncode == 0
    fake.script(
        [
            Fault(kind="fenced"),
            Fault(status=503),
            Fault(kind="prose"),
            Fault(kind="truncated"),
            Fault(kind="empty_choices"),
        ]
    )
    assert (
        herbx("run", str(sheets), "--run-id", "b", "--new-run", *FAST).returncode == 0
    )
    fake.key_fails_after(KEY, 3)
    assert (
        herbx(
            "run", str(sheets), "--run-id", "c", "--new-run", "--limit", "8", *FAST
        ).returncode
        == 0
    )
    return herbx


def report(herbx, name: str, *options: str) -> list[dict]:
    result = herbx("report", name, "--format", "json", *options)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def count(herbx, where: str, *params) -> int:
    return herbx.rows(f"SELECT count(*) FROM events WHERE {where}", *params)[0][0]


def test_every_shipped_report_runs_and_is_listed(ledger):
    listing = ledger("report", "--list").stdout.splitlines()
    names = [line.split()[0] for line in listing]

    assert len(names) >= 11
    for name in names:
        result = ledger("report", name)
        assert result.returncode == 0, (name, result.stderr)


def test_success_rate_matches_the_outcome_events(ledger):
    rows = {row["run_id"]: row for row in report(ledger, "success_rate")}

    for run_id in ("a", "b", "c"):
        saved = count(ledger, "type='result_saved' AND run_id=?", run_id)
        failed = count(ledger, "type='specimen_failed' AND run_id=?", run_id)
        assert (rows[run_id]["saved"], rows[run_id]["failed"]) == (saved, failed)
    assert rows["b"]["failed"] == 2


def test_spend_by_key_matches_the_costs_and_the_fake(ledger, fake):
    rows = report(ledger, "spend_by_key")

    events_total = ledger.rows(
        "SELECT sum(cost) FROM events WHERE type='response_received'"
    )[0][0]
    assert sum(r["spend_usd"] for r in rows) == pytest.approx(events_total, abs=1e-5)
    assert round(sum(r["spend_usd"] for r in rows), 2) == round(fake.total_cost(), 2)
    assert len(rows) == 2  # the original key and the one provisioned in run c


def test_spend_by_model_and_day_add_up_to_the_same_total(ledger):
    by_model = sum(r["spend_usd"] for r in report(ledger, "spend_by_model"))
    by_day = sum(r["spend_usd"] for r in report(ledger, "spend_by_day"))

    assert by_model == pytest.approx(by_day, abs=1e-5)


def test_failures_by_reason_match_the_failure_events(ledger):
    rows = report(ledger, "failures_by_reason")

    attempts = {r["reason"]: r["count"] for r in rows if r["level"] == "attempt"}
    specimens = {r["reason"]: r["count"] for r in rows if r["level"] == "specimen"}
    assert specimens == {"truncated": 1, "unparseable": 1}
    for reason, number in attempts.items():
        assert (
            number
            == ledger.rows(
                "SELECT count(*) FROM events WHERE type='request_failed' "
                "AND json_extract(payload, '$.reason') = ?",
                reason,
            )[0][0]
        )
    assert attempts["http_503"] == 1 and attempts["empty_choices"] == 1


def test_latency_percentiles_match_the_response_events(ledger):
    rows = {row["run_id"]: row for row in report(ledger, "latency_percentiles")}

    latencies = [
        json.loads(payload)["latency_ms"]
        for (payload,) in ledger.rows(
            "SELECT payload FROM events WHERE type='response_received' AND run_id='a'"
        )
    ]
    assert rows["a"]["responses"] == len(latencies)
    assert rows["a"]["p50_ms"] == pytest.approx(statistics.median(latencies), abs=0.1)
    assert rows["a"]["max_ms"] == pytest.approx(max(latencies), abs=0.1)


def test_retries_and_rotations_match_the_events(ledger):
    rows = {row["run_id"]: row for row in report(ledger, "retries_and_rotations")}

    for run_id in ("a", "b", "c"):
        assert rows[run_id]["attempts"] == count(
            ledger, "type='request_sent' AND run_id=?", run_id
        )
        assert rows[run_id]["retries"] == count(
            ledger, "type='retry_scheduled' AND run_id=?", run_id
        )
    assert rows["c"]["rotations"] == 1 and rows["c"]["keys_provisioned"] == 1
    assert rows["a"]["rotations"] == 0


def test_field_coverage_matches_the_saved_fields(ledger):
    rows = {row["term"]: row for row in report(ledger, "field_coverage", "--run", "a")}

    payloads = [
        json.loads(p)["fields"]
        for (p,) in ledger.rows(
            "SELECT payload FROM events WHERE type='result_saved' AND run_id='a'"
        )
    ]
    filled = sum(1 for f in payloads if f.get("catalogNumber", {}).get("value"))
    assert rows["catalogNumber"]["filled"] == filled
    assert rows["scientificName"]["saved"] == len(payloads) == 20


def test_cost_per_specimen_divides_spend_by_saved(ledger):
    rows = {row["run_id"]: row for row in report(ledger, "cost_per_specimen")}

    spend = ledger.rows(
        "SELECT sum(cost) FROM events WHERE type='response_received' AND run_id='b'"
    )[0][0]
    saved = count(ledger, "type='result_saved' AND run_id='b'")
    assert rows["b"]["cost_per_specimen_usd"] == pytest.approx(spend / saved, abs=1e-6)


def test_a_users_sql_file_runs_by_name(ledger, tmp_path):
    folder = tmp_path / "myqueries"
    folder.mkdir()
    (folder / "sheets_per_run.sql").write_text(
        "-- Sheets saved per run.\n"
        "SELECT run_id, count(*) AS n FROM results WHERE outcome = 'saved' "
        "GROUP BY run_id ORDER BY run_id;\n"
    )
    env = {"HERBX_QUERIES": str(folder)}

    listing = ledger("report", "--list", env=env).stdout
    result = ledger("report", "sheets_per_run", "--format", "csv", env=env)

    assert "Sheets saved per run." in listing.split("sheets_per_run", 1)[1]
    assert result.stdout.splitlines()[1] == "a,20"


def test_ad_hoc_sql_over_the_documented_views(ledger):
    result = ledger(
        "sql",
        "SELECT count(*) AS n FROM requests WHERE succeeded",
        "--format",
        "json",
    )

    answered_ok = (
        ledger.rows("SELECT count(*) FROM events WHERE type='response_received'")[0][0]
        - ledger.rows(
            "SELECT count(*) FROM events e WHERE type='request_failed' AND EXISTS ("
            "SELECT 1 FROM events r WHERE r.type='response_received' AND "
            "json_extract(r.payload, '$.request_id') = "
            "json_extract(e.payload, '$.request_id'))"
        )[0][0]
    )
    assert json.loads(result.stdout) == {"n": answered_ok}


def test_bad_sql_and_unknown_reports_get_one_line_errors(ledger):
    bad = ledger("sql", "SELEC nonsense")
    unknown = ledger("report", "no_such_report")

    for result in (bad, unknown):
        assert result.returncode == 2
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_reports_work_while_a_run_is_writing(herbx, sheets, fake):
    fake.latency = 0.1
    process = herbx.popen("run", str(sheets), "--run-id", "live", "--concurrency", "2")
    herbx.wait_for("result_saved", 2)

    reports = [herbx("report", "success_rate", "--format", "json") for _ in range(5)]

    assert process.wait(timeout=60) == 0
    for result in reports:
        assert result.returncode == 0, result.stderr
        assert "locked" not in result.stderr
    final = report(herbx, "success_rate")
    assert final[0]["saved"] == 20
