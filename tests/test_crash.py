"""SIGKILL at the worst moments, then resume: nothing lost, nothing done twice."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter

from herbx import projections
from herbx.fakeserver import Fault
from herbx.ledger import Ledger
from herbx.rawjsonl import LiveFile, write_atomically
from herbx.verify import verify


def chat_requests(fake) -> list:
    return [r for r in fake.requests if r.path.endswith("/chat/completions")]


def assert_run_is_whole(herbx, run_id: str, specimens: int = 20) -> None:
    raw = (herbx.workdir / "runs" / run_id / "raw.jsonl").read_bytes()
    lines = [json.loads(line) for line in raw.splitlines()]
    assert len(lines) == specimens
    assert len({line["specimen_id"] for line in lines}) == specimens
    assert raw.endswith(b"\n")

    rebuilt = herbx("project", "raw.jsonl", "--run", run_id)
    assert rebuilt.stdout.encode() == raw

    saved = herbx.rows(
        "SELECT specimen_id, count(*), max(position) FROM events "
        "WHERE type = 'result_saved' GROUP BY specimen_id"
    )
    assert len(saved) == specimens and all(count == 1 for _, count, _ in saved)
    # No request for a specimen was sent after its result had been saved.
    for specimen_id, _, saved_at in saved:
        later = herbx.rows(
            "SELECT count(*) FROM events WHERE type = 'request_sent' "
            "AND specimen_id = ? AND position > ?",
            specimen_id,
            saved_at,
        )
        assert later == [(0,)]

    with Ledger.open(herbx.ledger, create=False) as ledger:
        verdict = verify(ledger)
    assert verdict.ok, verdict.problem


def test_kills_at_each_step_then_resume_lose_nothing_and_repeat_nothing(
    herbx, sheets, fake
):
    points = [
        "after_request_sent=3",
        "after_outcome_committed=2",
        "raw_write_torn=3",
        "after_request_sent=2",
        "raw_write_torn=1",
    ]
    for point in points:
        killed = herbx(
            "run",
            str(sheets),
            "--run-id",
            "k1",
            "--concurrency",
            "1",
            env={"HERBX_FAILPOINTS": point},
        )
        assert killed.returncode == -signal.SIGKILL, (point, killed.stderr)

    finished = herbx("run", str(sheets), "--run-id", "k1")

    assert finished.returncode == 0, finished.stderr
    assert_run_is_whole(herbx, "k1")
    # Kills after `request_sent` happened before the HTTP call: the fake saw every
    # specimen exactly once.
    assert Counter(r.specimen for r in chat_requests(fake)).most_common(1)[0][1] == 1
    assert len(chat_requests(fake)) == 20


def test_a_torn_raw_jsonl_line_is_repaired_on_resume(herbx, sheets):
    herbx(
        "run",
        str(sheets),
        "--run-id",
        "t1",
        env={"HERBX_FAILPOINTS": "raw_write_torn=4"},
    )
    torn = (herbx.workdir / "runs/t1/raw.jsonl").read_bytes()
    assert not torn.endswith(b"\n")

    herbx("run", str(sheets), "--run-id", "t1")

    assert_run_is_whole(herbx, "t1")


def test_a_kill_in_the_middle_of_a_request_retries_that_request(herbx, sheets, fake):
    fake.script(
        [Fault(kind="fenced"), Fault(kind="fenced"), Fault(kind="hang", seconds=20)]
    )
    # One request at a time, so that exactly one is in flight at the kill.
    process = herbx.popen("run", str(sheets), "--run-id", "h1", "--concurrency", "1")
    herbx.wait_for("request_sent", 3)
    time.sleep(0.3)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)

    resumed = herbx("run", str(sheets), "--run-id", "h1")

    assert resumed.returncode == 0, resumed.stderr
    assert_run_is_whole(herbx, "h1")
    retried = herbx.rows(
        "SELECT specimen_id, count(*) FROM events WHERE type='request_sent' "
        "GROUP BY specimen_id HAVING count(*) > 1"
    )
    assert len(retried) == 1 and retried[0][1] == 2


def test_sigterm_records_the_run_as_aborted_and_it_resumes(herbx, sheets, fake):
    fake.script([Fault(kind="hang", seconds=20)])
    process = herbx.popen("run", str(sheets), "--run-id", "s1")
    herbx.wait_for("request_sent", 1)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=20)

    assert process.returncode == 128 + signal.SIGTERM
    assert "--run-id s1 to resume" in stderr
    assert herbx.rows("SELECT count(*) FROM events WHERE type='run_aborted'") == [(1,)]
    resumed = herbx("run", str(sheets), "--run-id", "s1")
    assert resumed.returncode == 0
    assert_run_is_whole(herbx, "s1")


def test_a_second_process_cannot_take_over_a_run_that_is_being_written(
    herbx, sheets, fake
):
    # Slow enough that the first run is still busy however long the second takes
    # to start on a loaded machine; let go of below.
    fake.latency = 1.0
    first = herbx.popen("run", str(sheets), "--run-id", "c1", "--concurrency", "1")
    herbx.wait_for("request_sent", 1)

    second = herbx("run", str(sheets), "--run-id", "c1")

    assert second.returncode != 0
    assert "being written by another herbx process" in second.stderr
    fake.latency = 0.0
    assert first.wait(timeout=60) == 0
    assert_run_is_whole(herbx, "c1")


def test_replacing_raw_jsonl_during_a_run_does_not_lose_lines(herbx, sheets, fake):
    fake.latency = 0.1
    process = herbx.popen("run", str(sheets), "--run-id", "p1")
    herbx.wait_for("result_saved", 3)

    herbx("project", "raw.jsonl", "--run", "p1", "-o", "runs/p1/raw.jsonl")

    assert process.wait(timeout=60) == 0
    assert_run_is_whole(herbx, "p1")


def test_raw_jsonl_replaced_by_an_old_projection_after_the_last_line_is_mended(
    herbx, sheets
):
    # `herbx project -o` read the ledger early, and its rename landed after the run
    # wrote its last line: only the run, as it ends, can still notice.
    herbx("run", str(sheets), "--run-id", "p1")
    path = herbx.workdir / "runs/p1/raw.jsonl"
    with Ledger.open(herbx.ledger) as ledger:
        live = LiveFile(path, lambda out: projections.raw_jsonl(ledger, "p1", out))
        early = b"".join(path.read_bytes().splitlines(keepends=True)[:3])
        write_atomically(path, early)

        live.close()

    assert_run_is_whole(herbx, "p1")


def test_kills_during_a_concurrent_run_lose_nothing_and_repeat_no_saved_specimen(
    herbx, sheets, fake
):
    fake.latency = 0.2
    for wait_for in (3, 9, 14):
        process = herbx.popen(
            "run", str(sheets), "--run-id", "m8", "--concurrency", "8"
        )
        herbx.wait_for("result_saved", wait_for)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    fake.latency = 0.0

    finished = herbx("run", str(sheets), "--run-id", "m8", "--concurrency", "8")

    assert finished.returncode == 0, finished.stderr
    assert_run_is_whole(herbx, "m8")
