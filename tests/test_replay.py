"""Replay: time travel to a ledger position, offline re-execution, run comparisons."""

from __future__ import annotations

import csv
import io
import json

import pytest

from herbx import answers, replay
from herbx.diffs import environment_changes
from herbx.fakeserver import Fault
from herbx.keys import fingerprint
from herbx.ledger import Ledger

from .conftest import KEY, MANAGEMENT

FAST = ["--backoff", "0.01", "--confirm-pause", "0.01", "--validate-after", "0"]
FAULTS = [
    Fault(kind="fenced"),
    Fault(status=429, retry_after="0"),
    Fault(status=503, times=2),
    Fault(kind="error_body"),
    Fault(kind="null_content"),
    Fault(status=502, html=True),
    Fault(kind="drop"),
    Fault(kind="truncated"),
    Fault(status=400, error_type="invalid_image", message="Invalid image"),
    Fault(kind="prose"),
]


@pytest.fixture
def mixed(herbx, sheets, fake):
    """A finished run whose answers include retried, failed and fenced ones."""
    fake.script(FAULTS)
    # Enough attempts that one sheet drawing several of the faults still ends saved
    # or failed: four connection failures in a row would stop the run as unreachable.
    result = herbx(
        "run",
        str(sheets),
        "--run-id",
        "mix",
        "--concurrency",
        "3",
        "--max-attempts",
        "30",
        *FAST,
    )
    assert result.returncode == 0, result.stderr
    return herbx


def test_offline_replay_reproduces_raw_jsonl_byte_for_byte_without_the_network(
    mixed, fake
):
    requests_before = len(fake.requests)
    dead = {"OPENROUTER_BASE_URL": "http://127.0.0.1:9/api/v1"}

    result = mixed("replay", "mix", "--offline", "-o", "again", env=dead)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("identical: the 20 lines")
    original = (mixed.workdir / "runs/mix/raw.jsonl").read_bytes()
    assert (mixed.workdir / "again/raw.jsonl").read_bytes() == original
    assert len(fake.requests) == requests_before
    assert b"truncated" in original and b"invalid_image" in original


def test_offline_replay_shows_which_specimens_and_fields_changed_parsing_gives(
    mixed, monkeypatch, tmp_path
):
    real_parse = answers.parse

    def newer_parse(content):
        fields, note = real_parse(content)
        if "scientificName" in fields:
            fields["scientificName"] = {"value": "Plantae indet.", "confidence": 0.1}
        fields.pop("habitat", None)
        return fields, note

    monkeypatch.setattr(answers, "parse", newer_parse)
    with Ledger.open(mixed.ledger, create=False) as ledger:
        result = replay.offline(ledger, "mix", tmp_path)

    assert not result.identical
    counts = result.comparison.counts
    saved = sum(
        '"dwc"' in line
        for line in (mixed.workdir / "runs/mix/raw.jsonl").read_text().splitlines()
    )
    assert counts[("scientificName", "changed")] == saved
    assert counts[("habitat", "vanished")] >= 1
    assert all(
        c.after == "Plantae indet."
        for c in result.comparison.changes
        if c.field == "scientificName"
    )
    replayed = [
        json.loads(x) for x in (tmp_path / "raw.jsonl").read_text().splitlines()
    ]
    assert len(replayed) == 20


def test_offline_replay_follows_a_stricter_parser_into_failures(
    mixed, monkeypatch, tmp_path
):
    def strict_parse(content):
        if "```" in content:
            raise answers.Unparseable("fenced", "the answer is wrapped in a fence")
        return answers_parse(content)

    answers_parse = answers.parse
    monkeypatch.setattr(answers, "parse", strict_parse)
    with Ledger.open(mixed.ledger, create=False) as ledger:
        result = replay.offline(ledger, "mix", tmp_path)

    outcome = [c for c in result.comparison.changes if c.field == "(outcome)"]
    assert len(outcome) == 1
    assert outcome[0].before == "saved"
    assert outcome[0].after.startswith("failed: fenced")


@pytest.fixture
def rotated(herbx, sheets, fake):
    """A run whose key dies after five answers and is replaced by a new one."""
    fake.add_management_key(MANAGEMENT)
    herbx.env["OPENROUTER_PROVISIONING_KEY"] = MANAGEMENT
    fake.key_fails_after(KEY, 5)
    result = herbx("run", str(sheets), "--run-id", "rot", *FAST)
    assert result.returncode == 0, result.stderr
    return herbx


def test_replay_just_before_a_key_rotation_shows_the_old_key_and_that_moment(
    rotated, fake
):
    (position,) = rotated.rows(
        "SELECT position FROM events WHERE type = 'key_rotated' AND run_id = 'rot'"
    )[0]

    before = rotated("replay", "rot", "--at", str(position - 1), "--json", "-o", "b")
    after = rotated("replay", "rot", "--at", str(position), "--json", "-o", "a")

    assert before.returncode == 0, before.stderr
    then, now = json.loads(before.stdout), json.loads(after.stdout)
    assert then["current_key"] == fingerprint(KEY)
    assert now["current_key"] == fingerprint(fake.provisioned[0])
    # Requests in flight when the key died may still have been answered: at least
    # the five the key was good for were saved before the rotation.
    ((saved_before,),) = rotated.rows(
        "SELECT count(*) FROM events WHERE type = 'result_saved' AND run_id = 'rot' "
        f"AND position < {position}"
    )
    assert saved_before >= 5
    assert then["saved"] == saved_before and then["status"] == "unfinished"
    raw = (rotated.workdir / "b/raw.jsonl").read_text().splitlines()
    assert len(raw) == saved_before
    audit = (rotated.workdir / "b/audit.log").read_text()
    assert "key expired or invalid" in audit and "fresh key loaded" not in audit
    spent = sum(json.loads(line)["usage"]["cost"] for line in raw)
    costs = csv.DictReader(io.StringIO((rotated.workdir / "b/costs.csv").read_text()))
    booked = sum(float(row["spend_usd"]) for row in costs)
    assert booked == pytest.approx(spent, abs=1e-9)


def test_replay_until_a_time_shows_what_the_ledger_held_then(rotated):
    (ts,) = rotated.rows(
        "SELECT ts FROM events WHERE type = 'result_saved' ORDER BY position "
        "LIMIT 1 OFFSET 2"
    )[0]

    result = rotated("replay", "rot", "--until", ts, "--json", "-o", "then")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["saved"] >= 3
    assert json.loads(result.stdout)["saved"] < 20


def test_replay_before_the_run_began_is_refused_in_one_line(rotated):
    result = rotated("replay", "rot", "--until", "2001-01-01")

    assert result.returncode == 2
    assert result.stderr.startswith("Error: the ledger holds nothing written by")
    assert "Traceback" not in result.stderr


def test_diff_counts_changed_appeared_and_vanished_fields(herbx, sheets, fake):
    herbx("run", str(sheets), "--run-id", "a", *FAST)
    fake.script([Fault(kind="truncated")])
    herbx("run", str(sheets), "--run-id", "b", "--new-run", *FAST)

    same = herbx("diff", "a", "a")
    result = herbx("diff", "a", "b", "--details")
    changes = [
        json.loads(x) for x in herbx("diff", "a", "b", "--json").stdout.splitlines()
    ]

    assert same.stdout.startswith("20 specimens: 20 the same, 0 with differences")
    assert result.returncode == 0, result.stderr
    assert "with differences" in result.stdout
    outcome = [c for c in changes if c["field"] == "(outcome)"]
    assert len(outcome) == 1 and outcome[0]["before"] == "saved"
    vanished = [c for c in changes if c["kind"] == "vanished"]
    assert vanished and all(
        c["specimen_id"] == outcome[0]["specimen_id"] for c in vanished
    )


def test_env_diff_names_package_and_python_changes():
    before = {
        "herbx_version": "0.1.0",
        "git": {"commit": "aaa", "dirty": False},
        "python": {"version": "3.11.7"},
        "packages": {"requests": "2.31.0", "six": "1.16.0"},
    }
    after = {
        "herbx_version": "0.1.0",
        "git": {"commit": "bbb", "dirty": True},
        "python": {"version": "3.12.1"},
        "packages": {"requests": "2.32.3", "duckdb": "1.1.0"},
    }

    assert environment_changes(before, after) == [
        ("git.commit", "aaa", "bbb"),
        ("git.dirty", "False", "True"),
        ("python.version", "3.11.7", "3.12.1"),
        ("package added: duckdb", "", "1.1.0"),
        ("package changed: requests", "2.31.0", "2.32.3"),
        ("package removed: six", "1.16.0", ""),
    ]


def test_env_diff_between_two_real_runs(herbx, sheets):
    herbx("run", str(sheets), "--run-id", "a", "--limit", "2", *FAST)
    herbx(
        "run",
        str(sheets),
        "--run-id",
        "b",
        "--new-run",
        "--limit",
        "2",
        *FAST,
        env={"HERBX_PROVISION_COMMAND": "true"},
    )

    same = herbx("env", "diff", "a", "a")
    result = herbx("env", "diff", "a", "b")

    assert same.stdout == "the environments are the same\n"
    assert result.returncode == 0, result.stderr
    assert "variables_set" in result.stdout
    assert "HERBX_PROVISION_COMMAND" in result.stdout


def test_rerun_takes_exactly_the_original_specimens_with_a_new_prompt(
    herbx, sheets, tmp_path
):
    herbx("run", str(sheets), "--run-id", "a", *FAST)
    # A sheet added to the folder after the original run.
    some = sorted(sheets.glob("*.jpg"))[0].read_bytes()
    (sheets / "late-arrival.jpg").write_bytes(some[:-10] + b"0123456789")
    prompt = tmp_path / "prompt.txt"
    prompt.write_text(
        "Transcribe the label of this herbarium sheet as Darwin Core JSON."
    )

    first = herbx("rerun", "a", "--prompt", str(prompt), "--limit", "5")
    resumed = herbx("rerun", "a", "--run-id", "a-rerun-1")

    assert first.returncode == 0, first.stderr
    assert resumed.returncode == 0, resumed.stderr
    assert "starting run a-rerun-1 over the specimens of a" in first.stderr
    ids = {
        json.loads(x)["specimen_id"]
        for x in (herbx.workdir / "runs/a-rerun-1/raw.jsonl").read_text().splitlines()
    }
    original = {
        json.loads(x)["specimen_id"]
        for x in (herbx.workdir / "runs/a/raw.jsonl").read_text().splitlines()
    }
    assert ids == original  # the late file is not part of it
    audit = herbx("audit", "--run", "a-rerun-1", "--kind", "run_started").stdout
    assert "rerun of a" in audit
    (prompt_hash,) = herbx.rows(
        "SELECT json_extract(payload, '$.prompt_sha256') FROM events "
        "WHERE type = 'run_started' AND run_id = 'a-rerun-1'"
    )[0]
    assert (
        prompt_hash
        != herbx.rows(
            "SELECT json_extract(payload, '$.prompt_sha256') FROM events "
            "WHERE type = 'run_started' AND run_id = 'a'"
        )[0][0]
    )
    assert herbx("diff", "a", "a-rerun-1").stdout.startswith("20 specimens:")


def test_rerun_of_an_unknown_run_is_refused_in_one_line(herbx, sheets):
    herbx("run", str(sheets), "--run-id", "a", "--limit", "1", *FAST)

    result = herbx("rerun", "nope")

    assert result.returncode == 2
    assert result.stderr.startswith("Error: no run 'nope' in")
