"""Planning a run's budget before it starts.

The cost of a sheet comes from this ledger's own history with the same model when
there is any (reported costs are what is billed), else from the shipped price table.
The local engine costs nothing but time, so its plan is in hours, taken from this
ledger's own OCR reads.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from sqlalchemy import func, select

from herbx import events as ev
from herbx import pricing
from herbx.ledger import Ledger
from herbx.schema import events as events_table

FREE_TIER_DAILY = (50, 1000)


@dataclass(frozen=True)
class Estimate:
    model: str
    specimens: int
    per_specimen: float | None
    source: str
    key_limit: float | None

    @property
    def total(self) -> float | None:
        if self.per_specimen is None:
            return None
        return self.per_specimen * self.specimens

    @property
    def keys_needed(self) -> int | None:
        """Keys of ``key_limit`` each that the total would use up."""
        if self.total is None or not self.key_limit:
            return None
        return max(1, math.ceil(self.total / self.key_limit))

    def free_days(self, per_day: int) -> int:
        return math.ceil(self.specimens / per_day)


def history(ledger: Ledger, model: str) -> tuple[float, int]:
    """Return (spend, saved specimens) over this ledger's runs of ``model``.

    Imported runs are left out: their files rarely say what each sheet cost, and
    counting their sheets at nothing would make the model look cheaper than it is.
    """
    runs = [
        record.run_id
        for record in ledger.read(types=("run_started",))
        if isinstance(record.event, ev.RunStarted)
        and record.event.model == model
        and record.event.engine != "import"
    ]
    if not runs:
        return 0.0, 0
    query = select(
        func.coalesce(
            func.sum(events_table.c.cost).filter(
                events_table.c.type == "response_received"
            ),
            0.0,
        ),
        func.count().filter(events_table.c.type == "result_saved"),
    ).where(events_table.c.run_id.in_(runs))
    with ledger.engine.connect() as conn:
        spend, saved = conn.execute(query).one()
    return float(spend), int(saved)


def estimate(
    ledger: Ledger | None, model: str, specimens: int, key_limit: float | None
) -> Estimate:
    """Estimate the cost of extracting ``specimens`` sheets with ``model``."""
    if ledger is not None:
        spend, saved = history(ledger, model)
        if saved:
            return Estimate(
                model,
                specimens,
                spend / saved,
                f"this ledger: ${spend:.4f} over {saved} saved specimens",
                key_limit,
            )
    listed = pricing.per_sheet(model)
    if listed is not None:
        return Estimate(
            model, specimens, listed, f"price table ({pricing.PRICED_ON})", key_limit
        )
    return Estimate(
        model, specimens, None, "unknown: no history, not in the table", key_limit
    )


@dataclass(frozen=True)
class LocalEstimate:
    specimens: int
    seconds_per_sheet: float
    source: str

    @property
    def hours(self) -> float:
        return self.seconds_per_sheet * self.specimens / 3600


# The newest reads say most about this machine and this herbx; a few hundred are
# plenty for a median.
LOCAL_SAMPLE = 500
# The median time per sheet docs/offline.md measured, for a ledger with no reads yet.
MEASURED_SECONDS = 4.6


def local_estimate(ledger: Ledger | None, specimens: int) -> LocalEstimate:
    """Estimate how long the local engine takes over ``specimens`` sheets."""
    durations = []
    if ledger is not None:
        # Found by the type index, newest first, so that only the sample is decoded:
        # each read carries every line of its sheet.
        query = (
            select(events_table.c.position)
            .where(events_table.c.type == "ocr_read")
            .order_by(events_table.c.position.desc())
            .limit(LOCAL_SAMPLE)
        )
        with ledger.engine.connect() as conn:
            positions = conn.execute(query).scalars().all()
        if positions:
            after = min(positions) - 1
            for record in ledger.read(types=("ocr_read",), after=after):
                if isinstance(record.event, ev.OcrRead):
                    durations.append(record.event.duration_ms)
    if not durations:
        return LocalEstimate(
            specimens,
            MEASURED_SECONDS,
            "no local run in this ledger yet; docs/offline.md measured this on 2 cores",
        )
    median = statistics.median(durations) / 1000
    return LocalEstimate(
        specimens,
        median,
        f"median of this ledger's last {len(durations)} OCR reads",
    )
