"""Throughput of herbx against the fake OpenRouter with a fixed simulated latency.

Side by side in one run: herbx at concurrency 1 and 16, and the sequential baseline
herbx replaces (one request at a time, then a 0.5 s sleep). Each configuration runs in
a process of its own, with the fake server in another, and reports wall time, the
ideal bound (specimens x latency / concurrency), efficiency against that bound, CPU
time per specimen and peak memory (max RSS).

    .venv/bin/python benchmarks/throughput.py --specimens 1000 10000 --latency 0.2

Images are small generated JPEGs (distinct bytes, a few KB each), so that the numbers
measure herbx and not JPEG decoding; the fake answers them with its synthetic record.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from PIL import Image

KEY = "sk-or-v1-benchmark-not-a-real-key-000000000000000000000000000000"
BASELINE_SLEEP = 0.5


def make_images(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(count):
        # A 96x64 sheet whose pixels spell the number: distinct files, tiny JPEGs.
        image = Image.new("L", (96, 64), 255)
        for bit in range(24):
            if number >> bit & 1:
                image.putpixel((4 * bit % 96, 8 + 4 * (bit // 24)), 0)
        image.save(folder / f"sheet-{number:06d}.jpg", quality=80)


def start_fake(latency: float) -> tuple[subprocess.Popen, str]:
    fake = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "herbx.fakeserver",
            "--port",
            "0",
            "--latency",
            str(latency),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = fake.stdout.readline().strip()
    return fake, line.removeprefix("listening on ")


def measured(command: list[str], env: dict[str, str]) -> dict[str, float]:
    """Run a command; return its wall time, CPU seconds and max RSS (MB)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _pid, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{command[:4]} failed: {process.stderr.read().decode()}")
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss_mb": usage.ru_maxrss / 1024,
    }


BASELINE = r"""
import base64, json, sys, time, pathlib, requests
folder, url, key, sleep = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
with open(sys.argv[5], "w") as out:
    for path in sorted(pathlib.Path(folder).glob("*.jpg")):
        data = base64.b64encode(path.read_bytes()).decode()
        image = {"url": "data:image/jpeg;base64," + data}
        content = [{"type": "text", "text": "Transcribe the label as Darwin Core."},
                   {"type": "image_url", "image_url": image}]
        body = {"model": "openai/gpt-4o-mini",
                "messages": [{"role": "user", "content": content}]}
        reply = requests.post(url + "/chat/completions", json=body, timeout=60,
                              headers={"Authorization": "Bearer " + key}).json()
        record = json.loads(reply["choices"][0]["message"]["content"])
        out.write(json.dumps({"image": path.name, "dwc": record}) + "\n")
        out.flush()
        time.sleep(sleep)
"""


def steady_seconds(ledger: Path) -> float:
    """Seconds from the first request sent to the last outcome saved."""
    with sqlite3.connect(ledger) as conn:
        first, last = conn.execute(
            "SELECT min(ts) FILTER (WHERE type = 'request_sent'), "
            "max(ts) FILTER (WHERE type IN ('result_saved', 'specimen_failed')) "
            "FROM events"
        ).fetchone()
    parse = datetime.fromisoformat
    return (parse(last) - parse(first)).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--specimens", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument(
        "--slow-specimens",
        type=int,
        default=None,
        help="run concurrency 1 and the baseline once, on this many "
        "(default: the smallest --specimens)",
    )
    parser.add_argument(
        "--no-slow",
        action="store_true",
        help="only herbx at concurrency 16 (skips concurrency 1 and the baseline)",
    )
    args = parser.parse_args()

    fake, url = start_fake(args.latency)
    rows = []
    try:
        with tempfile.TemporaryDirectory() as scratch:
            scratch = Path(scratch)
            env = {
                **os.environ,
                "OPENROUTER_API_KEY": KEY,
                "HERBX_KEYS_FILE": str(scratch / "keys.env"),
            }
            slow = args.slow_specimens or min(args.specimens)
            plan = [("herbx", 16, n) for n in args.specimens]
            if not args.no_slow:
                plan += [("herbx", 1, slow), ("baseline", 1, slow)]
            for what, concurrency, n in plan:
                images = scratch / f"images-{n}"
                if not images.exists():
                    make_images(images, n)
                if what == "baseline":
                    command = [
                        sys.executable,
                        "-c",
                        BASELINE,
                        str(images),
                        url,
                        KEY,
                        str(BASELINE_SLEEP),
                        str(scratch / f"baseline-{n}.jsonl"),
                    ]
                    rows.append((what, concurrency, n, measured(command, env), None))
                    continue
                ledger = scratch / f"c{concurrency}-{n}.db"
                command = [
                    sys.executable,
                    "-m",
                    "herbx",
                    "run",
                    str(images),
                    "--base-url",
                    url,
                    "--ledger",
                    str(ledger),
                    "--out",
                    str(scratch / f"out-{concurrency}-{n}"),
                    "--concurrency",
                    str(concurrency),
                    "--validate-after",
                    "0",
                    "--new-run",
                ]
                result = measured(command, env)
                rows.append((what, concurrency, n, result, steady_seconds(ledger)))
    finally:
        fake.terminate()
        fake.wait()

    print(f"latency {args.latency} s per request (fake server, separate process)")
    print(
        f"{'what':<10} {'conc':>4} {'specimens':>9} {'wall s':>8} {'ideal s':>8} "
        f"{'eff.':>6} {'steady s':>9} {'eff.':>6} {'cpu ms/spec':>11} {'peak MB':>8}"
    )
    for what, concurrency, n, result, steady in rows:
        ideal = n * args.latency / concurrency
        steady_text = f"{steady:>9.1f} {ideal / steady:>6.1%}" if steady else " " * 16
        print(
            f"{what:<10} {concurrency:>4} {n:>9} {result['wall']:>8.1f} {ideal:>8.1f} "
            f"{ideal / result['wall']:>6.1%} {steady_text} "
            f"{result['cpu'] / n * 1000:>11.2f} {result['rss_mb']:>8.1f}"
        )
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
