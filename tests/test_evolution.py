"""A ledger written by an earlier herbx still reads, verifies and replays the same."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from herbx import events as ev
from herbx.ledger import Ledger

DATA = Path(__file__).parent / "data"
FILES = ["raw.jsonl", "audit.log", "costs.csv", "occurrence.csv", "environment.json"]


@pytest.fixture
def old_ledger(herbx):
    shutil.copy(DATA / "ledger-v1.db", herbx.ledger)
    return herbx


def test_the_old_ledger_verifies(old_ledger):
    result = old_ledger("verify")

    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", FILES)
def test_each_projection_of_the_old_ledger_is_rebuilt_byte_for_byte(old_ledger, name):
    out = old_ledger.workdir / name

    result = old_ledger("project", name, "--run", "v1", "-o", str(out))

    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == (DATA / f"ledger-v1.{name}").read_bytes()


def test_offline_replay_of_the_old_run_is_identical(old_ledger):
    result = old_ledger("replay", "v1", "--offline", "-o", "again")

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("identical: the 8 lines")


def test_version_1_requests_are_read_as_version_2(old_ledger):
    with Ledger.open(old_ledger.ledger, create=False) as ledger:
        sent = list(ledger.read(types=("request_sent",)))

    assert sent and {record.version for record in sent} == {1}
    for record in sent:
        assert isinstance(record.event, ev.RequestSent)
        assert record.event.image_width > 0 and record.event.image_height > 0
        assert b"image_size" in record.payload  # the stored bytes are untouched


def test_new_events_in_the_old_ledger_are_written_as_version_2(old_ledger, sheets):
    result = old_ledger("run", str(sheets), "--run-id", "v2", "--limit", "1")

    assert result.returncode == 0, result.stderr
    rows = old_ledger.rows(
        "SELECT DISTINCT version FROM events WHERE type = 'request_sent' "
        "AND run_id = 'v2'"
    )
    assert rows == [(2,)]
    assert old_ledger("verify").returncode == 0
