"""Stored projections: kept current incrementally, equal to a rebuild from scratch."""

from __future__ import annotations

import io
import shutil

import pytest

from herbx import projections, store
from herbx.fakeserver import Fault
from herbx.ledger import Ledger
from herbx.store import Store

from .conftest import KEY, MANAGEMENT

FAST = ["--backoff", "0.01", "--confirm-pause", "0.01", "--validate-after", "0"]
NAMES = list(projections.PROJECTIONS)


def built(ledger_path, name, run_id, path=None, **options) -> bytes:
    """The projection's bytes, from the store at ``path`` (default: the ledger's)."""
    out = io.BytesIO()
    with Ledger.open(ledger_path, create=False) as ledger, Store(ledger, path) as st:
        projections.write(st, name, run_id, out, **options)
    return out.getvalue()


def every_output(ledger_path, runs, path=None) -> dict[tuple[str, str], bytes]:
    return {(n, r): built(ledger_path, n, r, path) for n in NAMES for r in runs}


@pytest.fixture
def several_runs(herbx, sheets, fake, tmp_path):
    """Three runs in one ledger: a key rotation, failures, a resume, a requeue.

    Every projection is brought up to date after each invocation, so the stored
    state at the end was built incrementally, a few events at a time.
    """
    fake.add_management_key(MANAGEMENT)
    herbx.env["OPENROUTER_PROVISIONING_KEY"] = MANAGEMENT
    fake.key_fails_after(KEY, 6)
    fake.script([Fault(kind="truncated"), Fault(status=503), Fault(kind="fenced")])
    invocations = [
        ("run", str(sheets), "--run-id", "a", "--limit", "9", *FAST),
        ("run", str(sheets), "--run-id", "a", *FAST),
        ("run", str(sheets), "--run-id", "b", "--new-run", "--limit", "5", *FAST),
    ]
    for args in invocations:
        result = herbx(*args)
        assert result.returncode == 0, result.stderr
        every_output(herbx.ledger, ["a"])

    # Run c: one sheet fails, then a resume with --retry-failed requeues and saves
    # it, so its raw.jsonl line is withdrawn and written again.
    fake.script([Fault(status=400)])
    result = herbx("run", str(sheets), "--run-id", "c", "--new-run", *FAST)
    assert result.returncode == 0, result.stderr
    every_output(herbx.ledger, ["a", "b", "c"])
    result = herbx("run", str(sheets), "--run-id", "c", "--retry-failed", *FAST)
    assert result.returncode == 0, result.stderr
    return herbx


def test_every_projection_built_incrementally_equals_one_rebuilt_from_scratch(
    several_runs, tmp_path
):
    runs = ["a", "b", "c"]
    incremental = every_output(several_runs.ledger, runs)
    from_scratch = every_output(several_runs.ledger, runs, tmp_path / "fresh.db")

    assert incremental == from_scratch
    assert all(incremental.values())
    assert b"new key provisioned" in incremental[("audit.log", "a")]
    assert b"specimen requeued" in incremental[("audit.log", "c")]


def test_projections_equal_the_files_the_runs_wrote_live(several_runs):
    work = several_runs.workdir
    for run_id in ("a", "b", "c"):
        for name in ("raw.jsonl", "environment.json"):
            live = (work / "runs" / run_id / name).read_bytes()
            assert built(several_runs.ledger, name, run_id) == live, (name, run_id)
    raw_c = (work / "runs/c/raw.jsonl").read_text().splitlines()
    assert len(raw_c) == 20
    assert all('"dwc"' in line for line in raw_c)  # the failure was replaced


def test_the_rebuild_flag_gives_the_same_bytes(several_runs, tmp_path):
    for name in NAMES:
        kept, rebuilt = tmp_path / f"kept-{name}", tmp_path / f"rebuilt-{name}"
        result = several_runs("project", name, "--run", "a", "-o", str(kept))
        assert result.returncode == 0, result.stderr
        several_runs("project", name, "--run", "a", "--rebuild", "-o", str(rebuilt))
        assert kept.read_bytes() == rebuilt.read_bytes(), name


def test_catching_up_reads_only_the_events_after_the_stored_position(
    herbx, sheets, tmp_path
):
    herbx("run", str(sheets), "--run-id", "a", "--limit", "5", *FAST)
    fold = projections.PROJECTIONS["audit.log"].fold
    with Ledger.open(herbx.ledger, create=False) as ledger, Store(ledger) as st:
        first = st.catch_up(fold)
        assert first == ledger.head()
        assert st.catch_up(fold) == 0
        head = ledger.head()

    herbx("run", str(sheets), "--run-id", "a", *FAST)
    with Ledger.open(herbx.ledger, create=False) as ledger, Store(ledger) as st:
        assert st.catch_up(fold) == ledger.head() - head
        assert st.position(fold) == ledger.head()


def test_a_fold_whose_version_changed_rebuilds_itself(herbx, sheets, monkeypatch):
    herbx("run", str(sheets), "--run-id", "a", *FAST)
    before = built(herbx.ledger, "raw.jsonl", "a")
    fold = projections.PROJECTIONS["raw.jsonl"].fold

    monkeypatch.setattr(type(fold), "version", fold.version + 1)
    with Ledger.open(herbx.ledger, create=False) as ledger, Store(ledger) as st:
        outcomes = sum(1 for _ in ledger.read(types=fold.types))
        assert st.catch_up(fold) == outcomes  # every event again, not zero
        assert st.catch_up(fold) == 0
    assert built(herbx.ledger, "raw.jsonl", "a") == before


def test_a_replaced_ledger_is_not_mistaken_for_the_one_the_store_followed(
    herbx, sheets, tmp_path
):
    herbx("run", str(sheets), "--run-id", "a", *FAST)
    built(herbx.ledger, "raw.jsonl", "a")
    kept = tmp_path / "kept.db"
    shutil.copy(herbx.ledger.with_name("herbx.db.projections"), kept)

    # A new ledger at the same path, with as many events or more: only the hash of
    # the event at the stored position can tell them apart.
    for name in ("herbx.db", "herbx.db-wal", "herbx.db-shm"):
        herbx.ledger.with_name(name).unlink(missing_ok=True)
    herbx("run", str(sheets), "--run-id", "z", "--limit", "7", *FAST)
    herbx("run", str(sheets), "--run-id", "z", *FAST)
    herbx("run", str(sheets), "--run-id", "y", "--new-run", *FAST)
    for name in ("herbx.db.projections-wal", "herbx.db.projections-shm"):
        herbx.ledger.with_name(name).unlink(missing_ok=True)
    shutil.copy(kept, herbx.ledger.with_name("herbx.db.projections"))

    assert built(herbx.ledger, "raw.jsonl", "a") == b""
    assert (
        built(herbx.ledger, "raw.jsonl", "z")
        == (herbx.workdir / "runs/z/raw.jsonl").read_bytes()
    )


class Interrupted(Exception):
    pass


def test_a_catch_up_cut_off_midway_resumes_to_the_same_state(
    herbx, sheets, tmp_path, monkeypatch
):
    herbx("run", str(sheets), "--run-id", "a", *FAST)
    monkeypatch.setattr(store, "CHUNK", 7)  # many committed chunks
    fold = projections.PROJECTIONS["audit.log"].fold
    real_apply = type(fold).apply
    seen = []

    def failing_apply(self, db, record):
        seen.append(record.position)
        if len(seen) == 30:
            raise Interrupted
        real_apply(self, db, record)

    with Ledger.open(herbx.ledger, create=False) as ledger, Store(ledger) as st:
        monkeypatch.setattr(type(fold), "apply", failing_apply)
        with pytest.raises(Interrupted):
            st.catch_up(fold)
        monkeypatch.setattr(type(fold), "apply", real_apply)
        assert st.position(fold) == 28  # four whole chunks, the fifth rolled back
        st.catch_up(fold)

    fresh = tmp_path / "fresh.db"
    assert built(herbx.ledger, "audit.log", "a") == built(
        herbx.ledger, "audit.log", "a", fresh
    )


def test_costs_read_from_the_store_match_costs_after_a_rebuild(several_runs):
    kept = several_runs("costs", "--by", "key", "--format", "csv").stdout
    several_runs.ledger.with_name("herbx.db.projections").unlink()

    assert several_runs("costs", "--by", "key", "--format", "csv").stdout == kept
