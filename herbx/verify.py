"""Checking that a ledger's history is the one that was written.

Walks every row in position order and recomputes the hash chain, the gap-free
positions and each run's sequence numbers. Triggers stop accidental edits; this catches
deliberate ones made with the triggers dropped.
"""

from __future__ import annotations

import msgspec
from sqlalchemy import select

from herbx.ledger import GENESIS_HASH, Ledger, chain_hash, stored_row
from herbx.schema import events as events_table


class Verdict(msgspec.Struct, frozen=True):
    """The result of a walk: ``ok``, or the first position where history breaks."""

    ok: bool
    rows: int
    position: int | None = None
    problem: str = ""


def verify(ledger: Ledger, batch: int = 10_000) -> Verdict:
    """Walk the whole ledger and return the first break in its history, if any."""
    prev_hash = GENESIS_HASH
    expected_position = 1
    last_seq: dict[str, int] = {}
    rows = 0

    with ledger.engine.connect() as conn:
        result = conn.execution_options(yield_per=batch).execute(
            select(events_table).order_by(events_table.c.position)
        )
        for row in result:
            rows += 1
            position = row.position
            if position != expected_position:
                return Verdict(
                    False,
                    rows,
                    expected_position,
                    f"row at position {expected_position} is missing "
                    f"(next row is {position})",
                )
            seq_expected = last_seq.get(row.run_id, 0) + 1
            if row.seq != seq_expected:
                return Verdict(
                    False,
                    rows,
                    position,
                    f"run {row.run_id} jumps from seq {seq_expected - 1} to {row.seq}",
                )
            if chain_hash(prev_hash, stored_row(row)) != row.hash:
                return Verdict(
                    False,
                    rows,
                    position,
                    "row does not match its hash: it was changed, or rows were "
                    "reordered or removed before it",
                )
            prev_hash = row.hash
            last_seq[row.run_id] = row.seq
            expected_position += 1
    return Verdict(True, rows)
