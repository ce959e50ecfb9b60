"""Reports, projections and catch-up on a generated ledger of a million events.

    .venv/bin/python benchmarks/ledger_scale.py --events 1000000

The ledger is written through herbx's own append path (hash chain, one transaction per
1,000 events) with timestamps spread over ten days: four runs, each specimen
discovered, sent, answered and saved (one in twenty refused with a 400 and failed),
keys rotating twice per run. Then each step runs in a fresh ``herbx`` process, as a
user would run it, and its wall time and peak memory are printed:

- a named report with the warehouse exported from nothing, then with it current;
- a full rebuild of the largest run's raw.jsonl (``--rebuild``: every event folded
  again from position 0), then the same file from the current store;
- 1,000 new events appended, then the time each stored fold takes to catch up (in
  this process: the catch-up alone) and a report in a fresh process.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec

from herbx import events as ev
from herbx import projections
from herbx.ledger import Ledger
from herbx.store import Store

RUNS = (("big", 0.6), ("second", 0.2), ("third", 0.1), ("fourth", 0.1))
MODEL = "openai/gpt-4o-mini"
KEYS = (
    "sk-or-v1-...a1b2#0f3c9e21",
    "sk-or-v1-...c3d4#7a11b0e4",
    "sk-or-v1-...e5f6#3d9c2a7b",
)
BATCH = 1000


class Clock:
    """Timestamps advancing evenly over ten days, one step per append."""

    def __init__(self, steps: int):
        self.start = datetime(2026, 11, 1, tzinfo=UTC)
        self.step = timedelta(days=10) / max(steps, 1)
        self.calls = 0

    def __call__(self) -> str:
        moment = self.start + self.step * self.calls
        self.calls += 1
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def fields(number: int) -> dict:
    return {
        "catalogNumber": {"value": f"{number:06d}", "confidence": 1.0},
        "scientificName": {
            "value": "Agropyron cristatum (L.) Gaertn.",
            "confidence": 0.9,
        },
        "eventDate": {"value": "1962-06-08", "confidence": 0.8},
        "recordedBy": {"value": "D. R. Wade", "confidence": 0.8},
        "country": {"value": "CANADA", "confidence": 1.0},
        "locality": {"value": "Regina, Wascana Park", "confidence": 0.9},
    }


def specimen_events(run: str, number: int, key: str) -> list[ev.Event]:
    specimen_id = hashlib.sha256(f"{run}/{number}".encode()).hexdigest()
    path = f"sheets/{number:07d}.jpg"
    request_id = f"{run}-{number}"
    events: list[ev.Event] = [
        ev.SpecimenDiscovered(specimen_id=specimen_id, path=path, size=812_345),
        ev.RequestSent(
            specimen_id=specimen_id,
            attempt=1,
            request_id=request_id,
            key_fingerprint=key,
            model=MODEL,
        ),
    ]
    if number % 20 == 19:
        message = "image could not be decoded"
        events.append(
            ev.RequestFailed(
                specimen_id=specimen_id,
                attempt=1,
                request_id=request_id,
                reason="http_400",
                message=message,
                status=400,
                key_fingerprint=key,
            )
        )
        events.append(
            ev.SpecimenFailed(
                specimen_id=specimen_id,
                path=path,
                reason="http_400",
                message=message,
                attempts=1,
                model=MODEL,
            )
        )
        return events
    record = fields(number)
    cost = 0.0006 + (number % 7) * 0.00001
    usage = {"prompt_tokens": 3900, "completion_tokens": 180, "total_tokens": 4080}
    usage["cost"] = cost
    body = msgspec.json.encode(
        {
            "id": f"gen-1759804796-{number:020d}",
            "model": MODEL,
            "choices": [{"message": {"content": msgspec.json.encode(record).decode()}}],
            "usage": usage,
        }
    ).decode()
    events.append(
        ev.ResponseReceived(
            specimen_id=specimen_id,
            attempt=1,
            request_id=request_id,
            status=200,
            latency_ms=900.0 + number % 5000,
            body=body,
            key_fingerprint=key,
            usage=usage,
            cost=cost,
            provider="OpenAI",
            model=MODEL,
        )
    )
    events.append(
        ev.ResultSaved(
            specimen_id=specimen_id,
            path=path,
            attempt=1,
            request_id=request_id,
            fields=record,
            model=MODEL,
            provider="OpenAI",
            usage=usage,
        )
    )
    return events


def run_events(run: str, specimens: int, first: int = 0) -> list[ev.Event]:
    """Every event of ``specimens`` sheets of a run, keys rotating at the thirds."""
    out: list[ev.Event] = []
    if first == 0:
        out.append(
            ev.RunStarted(
                model=MODEL,
                endpoint="https://openrouter.ai/api/v1",
                prompt_sha256="0" * 64,
                prompt_text="Transcribe the label as Darwin Core.",
                images_dir="/data/sheets",
            )
        )
        out.append(ev.EnvironmentSnapshotTaken(snapshot={"herbx_version": "bench"}))
    for number in range(first, first + specimens):
        key = KEYS[min(2, 3 * number // max(specimens, 1))]
        out.extend(specimen_events(run, number, key))
    return out


def generate(ledger_path: Path, total: int) -> None:
    """Write about ``total`` events into a new ledger."""
    clock = Clock(total // BATCH + 10)
    with Ledger.open(ledger_path, clock=clock) as ledger:
        for run, share in RUNS:
            events = run_events(run, int(total * share / 4))
            for start in range(0, len(events), BATCH):
                ledger.append(run, events[start : start + BATCH])


def measured(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak memory (MB) of a fresh process."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _pid, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{command} failed: {process.stderr.read().decode()}")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    parser.add_argument("--generate-only", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate_only:
        generate(args.generate_only, args.events)
        return

    scratch = args.keep or Path(tempfile.mkdtemp(prefix="herbx-scale-"))
    scratch.mkdir(parents=True, exist_ok=True)
    ledger_path = scratch / "herbx.db"
    herbx = [sys.executable, "-m", "herbx"]
    env = {**os.environ, "HERBX_LEDGER": str(ledger_path)}
    rows: list[tuple[str, float, float | None]] = []

    # Generated by a child process: a child forked from a parent holding a million
    # events would report the parent's memory as its own peak.
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, __file__, "--events", str(args.events)]
        + ["--generate-only", str(ledger_path)],
        check=True,
    )
    counts = {run: int(args.events * share / 4) for run, share in RUNS}
    with Ledger.open(ledger_path, create=False) as ledger:
        head = ledger.head()
    size = ledger_path.stat().st_size / 1e6
    print(
        f"generated {head:,} events, {sum(counts.values()):,} specimens in "
        f"{time.perf_counter() - started:.1f} s; ledger {size:,.0f} MB",
        flush=True,
    )

    def step(label: str, *command: str) -> None:
        wall, rss = measured([*herbx, *command], env)
        rows.append((label, wall, rss))
        print(f"{label:<58} {wall:>7.2f} s {rss:>7.0f} MB", flush=True)

    step(
        "report success_rate, warehouse exported from nothing", "report", "success_rate"
    )
    step("report success_rate, warehouse current", "report", "success_rate")
    step("report spend_by_key, warehouse current", "report", "spend_by_key")
    raw = str(scratch / "raw.jsonl")
    step(
        f"project raw.jsonl --rebuild ({counts['big']:,} lines, from position 0)",
        "project",
        "raw.jsonl",
        "--run",
        "big",
        "--rebuild",
        "-o",
        raw,
    )
    step(
        "project raw.jsonl, store current",
        "project",
        "raw.jsonl",
        "--run",
        "big",
        "-o",
        raw,
    )
    for name in projections.PROJECTIONS:
        if name in ("raw.jsonl", "dwca.zip"):
            continue
        out = str(scratch / name)
        step(
            f"project {name} (fold built from nothing)",
            "project",
            name,
            "--run",
            "big",
            "-o",
            out,
        )

    # 1,000 new events: 250 more sheets of the largest run.
    with Ledger.open(ledger_path, create=False) as ledger:
        ledger.append("big", run_events("big", 250, first=counts["big"]))
        added = ledger.head() - head
        with Store(ledger) as store:
            for name, chosen in projections.PROJECTIONS.items():
                if name == "dwca.zip":
                    continue  # the same fold as occurrence.csv
                began = time.perf_counter()
                applied = store.catch_up(chosen.fold)
                seconds = time.perf_counter() - began
                label = f"catch up {chosen.fold.name} after {added:,} new events"
                rows.append((label, seconds, None))
                print(f"{label:<58} {seconds:>7.3f} s ({applied} applied)", flush=True)
    step(f"report success_rate after {added:,} new events", "report", "success_rate")
    print(f"work folder: {scratch}")


if __name__ == "__main__":
    main()
