"""Shared fixtures: a real ledger file, the sample sheets, a live fake OpenRouter and
a way to run the real ``herbx`` command against them."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from herbx.fakeserver import FakeOpenRouter

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples" / "specimens"
RECORDED = ROOT / "samples" / "recorded" / "gpt-4o-mini-2024-07-18.jsonl"

# Visibly fake keys: not 64 hex digits, so no scanner mistakes them for real ones.
KEY = "sk-or-v1-testkey-alpha-000000000000000000000000000000000000000001"
MANAGEMENT = "sk-or-v1-testkey-management-00000000000000000000000000000000000000"


@pytest.fixture
def sheets(tmp_path: Path) -> Path:
    """A private copy of the 20 sample sheets."""
    target = tmp_path / "sheets"
    shutil.copytree(SAMPLES, target, ignore=shutil.ignore_patterns("*.md"))
    return target


@pytest.fixture
def fake():
    """A fake OpenRouter on 127.0.0.1 that knows the recorded answers and ``KEY``."""
    with FakeOpenRouter(recorded=RECORDED, specimens=SAMPLES) as server:
        server.add_key(KEY)
        yield server


class Herbx:
    """Runs the real herbx command in a work folder with a clean environment."""

    def __init__(self, workdir: Path, fake: FakeOpenRouter):
        self.workdir = workdir
        self.ledger = workdir / "herbx.db"
        # The machine's own herbx settings (~/.config/herbx holds keys and reports)
        # and proxies must not reach the fake on 127.0.0.1 or change what is shipped.
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("OPENROUTER_", "HERBX_", "XDG_"))
            and not key.lower().endswith("_proxy")
        }
        self.env.update(
            {
                "HOME": str(workdir),
                "NO_PROXY": "127.0.0.1,localhost",
                "OPENROUTER_API_KEY": KEY,
                "OPENROUTER_BASE_URL": fake.url,
                "HERBX_LEDGER": str(self.ledger),
                "HERBX_KEYS_FILE": str(workdir / "keys.env"),
                "NO_COLOR": "1",
            }
        )

    def __call__(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "herbx", *args],
            cwd=self.workdir,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "herbx", *args],
            cwd=self.workdir,
            env={**self.env, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def rows(self, sql: str, *params) -> list[tuple]:
        """Query the ledger file directly with sqlite3, as an outsider would."""
        with contextlib.closing(sqlite3.connect(self.ledger)) as conn:
            return conn.execute(sql, params).fetchall()

    def wait_for(self, event_type: str, count: int, timeout: float = 30) -> None:
        """Wait until the ledger holds ``count`` events of a type (a run is writing)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                found = self.rows(
                    "SELECT count(*) FROM events WHERE type = ?", event_type
                )
            except sqlite3.OperationalError:
                found = [(0,)]
            if found[0][0] >= count:
                return
            time.sleep(0.05)
        raise AssertionError(f"no {count} {event_type} events after {timeout} s")


@pytest.fixture
def herbx(tmp_path: Path, fake: FakeOpenRouter) -> Herbx:
    workdir = tmp_path / "work"
    workdir.mkdir()
    return Herbx(workdir, fake)
