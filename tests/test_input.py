"""How herbx run reads the images folder: streamed, deduplicated, and re-read on
resume, where files may have been renamed, replaced or broken in between."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def completions(fake) -> int:
    return len([r for r in fake.requests if r.path.endswith("/completions")])


@pytest.fixture
def folder(tmp_path, sheets) -> Path:
    """Five distinct sample sheets."""
    target = tmp_path / "five"
    target.mkdir()
    for sheet in sorted(sheets.glob("*.jpg"))[:5]:
        shutil.copy(sheet, target / sheet.name)
    return target


def test_the_same_image_under_two_names_is_sent_once(herbx, folder, fake):
    first = sorted(folder.glob("*.jpg"))[0]
    (folder / "copies").mkdir()
    shutil.copy(first, folder / "copies" / "again.jpg")

    result = herbx("run", str(folder), "--run-id", "d1")

    assert result.returncode == 0, result.stderr
    assert completions(fake) == 5
    assert len(lines(herbx.workdir / "runs/d1/raw.jsonl")) == 5
    assert herbx.rows(
        "SELECT json_extract(payload, '$.path') FROM events "
        "WHERE type = 'duplicate_found'"
    ) == [("copies/again.jpg",)]
    audit = herbx("audit", "--run", "d1").stdout
    assert f"copies/again.jpg holds the same image as {first.name}" in audit


def test_the_input_scan_records_files_and_a_digest_that_follows_the_folder(
    herbx, folder, sheets
):
    herbx("run", str(folder), "--run-id", "s1", "--limit", "1")
    extra = sorted(sheets.glob("*.jpg"))[-1]
    shutil.copy(extra, folder / extra.name)

    herbx("run", str(folder), "--run-id", "s1", "--limit", "1")

    scans = herbx.rows(
        "SELECT json_extract(payload, '$.files'), json_extract(payload, '$.new'), "
        "json_extract(payload, '$.input_digest') FROM events "
        "WHERE type = 'input_scanned' ORDER BY position"
    )
    assert [(files, new) for files, new, _ in scans] == [(5, 5), (6, 1)]
    assert scans[0][2] != scans[1][2]
    discovered = herbx.rows(
        "SELECT count(*) FROM events WHERE type = 'specimen_discovered'"
    )
    assert discovered == [(6,)]


def test_a_sheet_renamed_before_resume_is_sent_from_its_new_name(herbx, folder, fake):
    herbx("run", str(folder), "--run-id", "m1", "--limit", "1")
    last = sorted(folder.glob("*.jpg"))[-1]
    last.rename(folder / "renamed.jpg")

    resumed = herbx("run", str(folder), "--run-id", "m1")

    assert resumed.returncode == 0, resumed.stderr
    saved = lines(herbx.workdir / "runs/m1/raw.jsonl")
    assert len(saved) == 5 and all("dwc" in line for line in saved)
    assert completions(fake) == 5


def test_a_sheet_whose_bytes_changed_is_not_sent_under_its_old_identity(
    herbx, folder, sheets
):
    herbx("run", str(folder), "--run-id", "c1", "--limit", "1")
    last = sorted(folder.glob("*.jpg"))[-1]
    other = sorted(sheets.glob("*.jpg"))[-1]
    shutil.copy(other, last)  # same name, another sheet's bytes

    resumed = herbx("run", str(folder), "--run-id", "c1")

    assert resumed.returncode == 0, resumed.stderr
    saved = lines(herbx.workdir / "runs/c1/raw.jsonl")
    by_id = {line["specimen_id"]: line for line in saved}
    assert len(saved) == 6
    assert by_id[hashlib.sha256(other.read_bytes()).hexdigest()]["image"] == last.name
    missing = [line for line in saved if "error" in line]
    assert len(missing) == 1 and missing[0]["error"].startswith("image_missing")
    assert "specimens  6: 5 saved, 1 failed" in resumed.stdout


def test_a_bad_file_name_met_during_the_walk_stops_the_run_resumably(herbx, folder):
    bad = os.fsencode(folder) + b"/z-\xff.jpg"
    shutil.copy(sorted(folder.glob("*.jpg"))[0], os.fsdecode(bad))

    stopped = herbx("run", str(folder), "--run-id", "u1")

    assert stopped.returncode == 2
    assert "is not valid UTF-8; rename it" in stopped.stderr
    assert "Traceback" not in stopped.stderr
    assert herbx.rows(
        "SELECT json_extract(payload, '$.reason') FROM events "
        "WHERE type = 'run_aborted'"
    ) == [("input",)]

    os.rename(bad, os.fsencode(folder) + b"/z-fixed.jpg")
    resumed = herbx("run", str(folder), "--run-id", "u1")

    assert resumed.returncode == 0, resumed.stderr
    assert len(lines(herbx.workdir / "runs/u1/raw.jsonl")) == 5
