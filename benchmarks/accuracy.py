"""Accuracy and speed of the local engine on the 20 bundled sample sheets.

Reads every sample sheet with the local OCR engine (one process, models loaded once),
times each sheet and the peak memory, keeps the readings in
``tests/data/sample-readings.json`` (the tests score today's label rules over them
without running OCR), and scores the draft records against the truth table a person
read off the sheets, ``tests/data/truth.csv``: per Darwin Core term, exact and near
matches, for typed and for handwritten labels.

    .venv/bin/python benchmarks/accuracy.py            # OCR again, then score
    .venv/bin/python benchmarks/accuracy.py --stored   # score the stored readings
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import msgspec

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from herbx import accuracy, labels  # noqa: E402
from herbx.events import OcrLine  # noqa: E402

SAMPLES = ROOT / "samples" / "specimens"
READINGS = ROOT / "tests" / "data" / "sample-readings.json"
TRUTH = ROOT / "tests" / "data" / "truth.csv"


class Stored(msgspec.Struct):
    """One sheet's reading as kept for the tests."""

    rotation: int
    exif_orientation: int
    width: int
    height: int
    duration_ms: int
    lines: list[OcrLine]


def read_samples() -> dict[str, Stored]:
    from herbx.ocr import Reader

    started = time.perf_counter()
    reader = Reader()
    load = time.perf_counter() - started
    readings: dict[str, Stored] = {}
    for path in sorted(SAMPLES.glob("*.jpg")):
        reading = reader.read(path.read_bytes(), path.name)
        readings[path.stem] = Stored(
            reading.rotation,
            reading.exif_orientation,
            reading.width,
            reading.height,
            reading.duration_ms,
            reading.lines,
        )
        print(
            f"{path.stem[:12]}  {reading.duration_ms / 1000:5.1f} s  "
            f"turned {reading.rotation:3}  {len(reading.lines):3} lines",
            file=sys.stderr,
        )
    times = [r.duration_ms / 1000 for r in readings.values()]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"\nOCR of {len(times)} sheets on {platform.machine()} "
        f"({len(__import__('os').sched_getaffinity(0))} cores), "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {reader.info.version} / "
        f"{reader.info.runtime}:\n"
        f"  models loaded in {load:.1f} s\n"
        f"  per sheet: median {statistics.median(times):.1f} s, "
        f"min {min(times):.1f} s, max {max(times):.1f} s, total {sum(times):.0f} s\n"
        f"  peak memory (max RSS) {peak:.0f} MB"
    )
    return readings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--stored", action="store_true", help="score the stored readings, no OCR"
    )
    args = parser.parse_args()

    if args.stored:
        readings = msgspec.json.decode(READINGS.read_bytes(), type=dict[str, Stored])
    else:
        readings = read_samples()
        READINGS.write_bytes(msgspec.json.format(msgspec.json.encode(readings)) + b"\n")

    records = {sha: labels.extract(r.lines) for sha, r in readings.items()}
    truth = accuracy.read_truth(TRUTH)
    result = accuracy.score(truth, records, labels.TERMS)
    print(f"\nlabel rules {labels.VERSION} against {TRUTH.relative_to(ROOT)}:\n")
    print(table(result))
    print(json.dumps({t: vars(result.by_term[t]) for t in labels.TERMS}))


def table(result: accuracy.Score) -> str:
    scripts = ("typed", "handwritten")
    header = "| term | on label | exact | exact or near | wrong | missed | invented |"
    header += "".join(f" {s}: exact / near |" for s in scripts)
    rows = [header, "|" + " --- |" * (7 + len(scripts))]

    def rate(value: float | None) -> str:
        return "-" if value is None else f"{value:.0%}"

    for term in (*result.terms, None):
        tally = result.by_term[term] if term else result.total()
        cells = [
            term or "**all terms**",
            str(tally.truths),
            rate(tally.exact_rate),
            rate(tally.near_rate),
            str(tally.wrong),
            str(tally.missed),
            str(tally.invented),
        ]
        for script in scripts:
            part = (
                result.by_script.get(script, {}).get(term)
                if term
                else result.total(script)
            )
            if part is None or not part.truths:
                cells.append("-")
            else:
                cells.append(f"{rate(part.exact_rate)} / {rate(part.near_rate)}")
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
