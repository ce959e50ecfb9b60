"""Measure the time herbx spends per specimen outside the HTTP call.

Runs a real extraction in-process against the fake OpenRouter (no latency) over N
distinct specimens made from the sample sheets, timing the ledger appends, the image
preparation and the HTTP calls separately.

    .venv/bin/python benchmarks/overhead.py --copies 10
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from herbx import extraction, images
from herbx.cli.run import default_prompt
from herbx.fakeserver import FakeOpenRouter
from herbx.keyring import KeySources
from herbx.keystore import KeysFile
from herbx.ledger import Ledger
from herbx.openrouter import Client

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples" / "specimens"
RECORDED = ROOT / "samples" / "recorded" / "gpt-4o-mini-2024-07-18.jsonl"
KEY = "sk-or-v1-benchmark-not-a-real-key-000000000000000000000000000000"


class Timer:
    def __init__(self) -> None:
        self.samples: list[float] = []

    def wrap(self, function):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.samples.append(time.perf_counter() - started)

        return timed

    @property
    def total(self) -> float:
        return sum(self.samples)


def make_specimens(target: Path, copies: int) -> int:
    # A byte after the JPEG end marker changes the file hash but not the pixels, so
    # every copy is a distinct specimen that the fake still recognises.
    count = 0
    for copy in range(copies):
        for sheet in sorted(SAMPLES.glob("*.jpg")):
            data = sheet.read_bytes() + bytes([copy])
            (target / f"{copy:03d}-{sheet.name}").write_bytes(data)
            count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=10)
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory() as scratch,
        FakeOpenRouter(recorded=RECORDED, specimens=SAMPLES) as fake,
    ):
        scratch = Path(scratch)
        sheets = scratch / "sheets"
        sheets.mkdir()
        count = make_specimens(sheets, args.copies)
        fake.add_key(KEY)

        ledger = Ledger.open(scratch / "bench.db")
        http, appends, prepare = Timer(), Timer(), Timer()
        client = Client(fake.url)
        client.chat = http.wrap(client.chat)
        ledger.append = appends.wrap(ledger.append)
        extraction.images.prepare = prepare.wrap(images.prepare)

        options = extraction.Options(
            images_dir=sheets,
            model="openai/gpt-4o-mini",
            base_url=fake.url,
            prompt_text=default_prompt(),
            run_id="bench",
            out=scratch / "out",
            validate_after=0,
            concurrency=1,  # one at a time: the figures are per specimen
        )
        keys = KeySources(keys_file=KeysFile(scratch / "keys.env"), env_key=KEY)
        run = extraction.Extraction(ledger, options, keys, client=client)
        started = time.perf_counter()
        outcome = run.execute()
        wall = time.perf_counter() - started
        ledger.close()
        shutil.rmtree(sheets)

    saved = outcome.state.saved
    outside = wall - http.total
    per = 1000 / count
    print(f"specimens                 {count} ({saved} saved)")
    print(f"wall time                 {wall:.2f} s")
    print(f"HTTP calls (fake, 0 ms)   {http.total * per:.2f} ms per specimen")
    print(f"outside the HTTP call     {outside * per:.2f} ms per specimen")
    print(f"  image preparation       {prepare.total * per:.2f} ms per specimen")
    print(
        f"  ledger appends          {appends.total * per:.2f} ms per specimen "
        f"({len(appends.samples) / count:.1f} commits; median "
        f"{statistics.median(appends.samples) * 1000:.2f} ms, "
        f"p99 {statistics.quantiles(appends.samples, n=100)[98] * 1000:.2f} ms)"
    )
    rest = outside - prepare.total - appends.total
    print(f"  everything else         {rest * per:.2f} ms per specimen")


if __name__ == "__main__":
    main()
