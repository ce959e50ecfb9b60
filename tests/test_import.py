"""Importing raw.jsonl files written by older tools."""

from __future__ import annotations

import csv
import io
import json

import pytest

from .conftest import RECORDED

FAST = ["--backoff", "0.01", "--validate-after", "0"]


def recorded_records() -> list[tuple[str, str, dict]]:
    """(sha256, image, fields) of the real recorded answers."""
    found = []
    for line in RECORDED.read_text().splitlines():
        item = json.loads(line)
        content = item["response"]["choices"][0]["message"]["content"]
        found.append((item["sha256"], item["image"], json.loads(content)))
    return found


def legacy_lines(count: int) -> list[str]:
    """Lines as old scripts wrote them: both field shapes, and some errors."""
    records = recorded_records()
    lines = []
    for number in range(count):
        sha, image, fields = records[number % len(records)]
        name = f"batch{number // 100:02d}/{number:05d}-{image}"
        if number % 9 == 4:
            item = {"image": name, "error": "HTTP 503: upstream overloaded"}
        elif number % 2:
            plain = {key: value["value"] for key, value in fields.items()}
            item = {"image": name, "model": "gpt-4o-mini", "dwc": plain}
        else:
            item = {"image": name, "dwc": fields, "timestamp": "2025-10-07T02:39:56"}
        lines.append(json.dumps(item))
    return lines


@pytest.fixture
def legacy_file(tmp_path):
    lines = legacy_lines(2700)
    path = tmp_path / "raw.jsonl"
    # The script was killed half-way through writing its last line.
    path.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][: len(lines[-1]) // 2])
    return path


def test_importing_a_file_with_a_torn_last_line_reports_it_and_keeps_the_rest(
    herbx, legacy_file
):
    result = herbx(
        "import", str(legacy_file), "--run-id", "old", "--model", "gpt-4o-mini"
    )

    assert result.returncode == 0, result.stderr
    cut = "cut off: the file ends in the middle of this line"
    assert result.stderr.strip().splitlines() == [f"{legacy_file}:2700: skipped, {cut}"]
    errors = sum(1 for n in range(2699) if n % 9 == 4)
    assert result.stdout.startswith(
        f"imported run old: {2699 - errors} saved, {errors} failed from 2700 lines "
        "(1 skipped"
    )
    raw = herbx("project", "raw.jsonl", "--run", "old").stdout.splitlines()
    assert len(raw) == 2699
    first = json.loads(raw[0])
    assert first["timestamp"] == "2025-10-07T02:39:56"
    assert first["dwc"]["scientificName"]["value"] == "Malva rotundifolia L."


def test_plain_string_fields_become_value_objects_without_confidence(
    herbx, legacy_file
):
    herbx("import", str(legacy_file), "--run-id", "old")

    lines = [json.loads(x) for x in herbx("project", "raw.jsonl").stdout.splitlines()]
    plain = lines[1]
    assert plain["model"] == "gpt-4o-mini"
    assert set(plain["dwc"]["scientificName"]) == {"value", "confidence"}
    assert plain["dwc"]["scientificName"]["confidence"] is None
    occurrences = list(
        csv.DictReader(io.StringIO(herbx("project", "occurrence.csv").stdout))
    )
    assert occurrences[1]["scientificName"] == plain["dwc"]["scientificName"]["value"]


def test_an_imported_run_is_marked_and_shows_in_runs_audit_and_reports(
    herbx, legacy_file
):
    herbx("import", str(legacy_file), "--run-id", "old")

    runs = herbx("runs", "--json").stdout.splitlines()
    audit = herbx("audit", "--run", "old", "--kind", "run_started").stdout
    report = herbx("report", "failures_by_reason", "--run", "old", "--format", "csv")

    assert json.loads(runs[0])["status"] == "finished"
    assert f"run imported from {legacy_file}" in audit
    assert report.returncode == 0, report.stderr
    assert "imported_error" in report.stdout


def test_a_broken_line_in_the_middle_is_reported_and_the_rest_imported(herbx, tmp_path):
    lines = legacy_lines(30)
    lines[11] = '{"image": "x.jpg", "dwc": {"scientificName": '
    lines[12] = "[1, 2, 3]"
    path = tmp_path / "raw.jsonl"
    path.write_text("\n".join(lines) + "\n")

    result = herbx("import", str(path), "--run-id", "old")

    assert result.returncode == 0, result.stderr
    assert f"{path}:12: skipped, not a JSON object" in result.stderr
    assert f"{path}:13: skipped, not a JSON object" in result.stderr
    assert len(herbx("project", "raw.jsonl").stdout.splitlines()) == 28


def test_a_sheet_listed_twice_keeps_its_later_line(herbx, tmp_path):
    first = {"image": "a.jpg", "error": "timeout"}
    second = {"image": "a.jpg", "dwc": {"scientificName": "Poa annua L."}}
    path = tmp_path / "raw.jsonl"
    path.write_text(json.dumps(first) + "\n" + json.dumps(second) + "\n")

    result = herbx("import", str(path), "--run-id", "old")

    assert "1 saved, 0 failed from 2 lines (0 skipped, 1 replaced" in result.stdout
    (line,) = herbx("project", "raw.jsonl").stdout.splitlines()
    assert json.loads(line)["dwc"]["scientificName"]["value"] == "Poa annua L."


def test_an_imported_run_lines_up_with_a_herbx_run_over_the_same_sheets(
    herbx, sheets, tmp_path
):
    herbx("run", str(sheets), "--run-id", "new", *FAST)
    legacy = tmp_path / "legacy.jsonl"
    # The old script's output for the same sheets, by file name only.
    names = (herbx.workdir / "runs/new/raw.jsonl").read_text().splitlines()
    with legacy.open("w") as out:
        for line in names:
            item = json.loads(line)
            fields = {key: value["value"] for key, value in item["dwc"].items()}
            fields["recordedBy"] = "someone else"
            out.write(json.dumps({"image": item["image"], "dwc": fields}) + "\n")

    herbx("import", str(legacy), "--run-id", "old", "--images", str(sheets))
    result = herbx("diff", "old", "new")

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("20 specimens: 0 the same, 20 with differences")
    assert "recordedBy" in result.stdout


def test_importing_into_an_existing_run_is_refused(herbx, legacy_file):
    herbx("import", str(legacy_file), "--run-id", "old")

    again = herbx("import", str(legacy_file), "--run-id", "old")

    assert again.returncode == 2
    assert again.stderr == "Error: run old already exists; choose another --run-id\n"


def test_a_large_import_leaves_the_report_warehouse_current(herbx, tmp_path):
    path = tmp_path / "raw.jsonl"
    path.write_text("\n".join(legacy_lines(6000)) + "\n")

    # 150,000 events by default; the same path with a lower threshold.
    result = herbx(
        "import",
        str(path),
        "--run-id",
        "big",
        env={"HERBX_REPORT_EXPORT_AFTER": "10000"},
    )

    assert result.returncode == 0, result.stderr
    assert "events for herbx report" in result.stderr
    state = json.loads((herbx.workdir / "herbx.db.reports/state.json").read_text())
    head = herbx.rows("SELECT max(position) FROM events")[0][0]
    assert state["position"] == head


def test_an_import_below_the_threshold_leaves_the_export_to_the_next_report(
    herbx, tmp_path
):
    path = tmp_path / "raw.jsonl"
    path.write_text("\n".join(legacy_lines(600)) + "\n")

    result = herbx("import", str(path), "--run-id", "small")

    assert result.returncode == 0, result.stderr
    assert "events for herbx report" not in result.stderr
    assert not (herbx.workdir / "herbx.db.reports/state.json").exists()
    report = herbx("report", "success_rate", "--format", "json")
    assert report.returncode == 0 and '"small"' in report.stdout


def test_an_imported_file_names_its_model_but_does_not_lower_its_estimate(
    herbx, tmp_path
):
    records = recorded_records()
    legacy = tmp_path / "cheap.jsonl"
    legacy.write_text(
        "".join(
            json.dumps({"image": image, "model": "openai/gpt-4o-mini", "dwc": fields})
            + "\n"
            for _, image, fields in records
        )
    )
    herbx("import", str(legacy), "--run-id", "old")
    folder = tmp_path / "sheets"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"not looked at")

    runs = [json.loads(line) for line in herbx("runs", "--json").stdout.splitlines()]
    plan = herbx("estimate", str(folder), "--model", "openai/gpt-4o-mini").stdout

    assert runs[0]["model"] == "openai/gpt-4o-mini"
    # The file says nothing of what the sheets cost: not $0 each.
    assert "price table" in plan and "this ledger" not in plan


def test_draft_lines_stay_drafts_only_when_they_say_so(herbx, tmp_path):
    (_, image, fields), *_ = recorded_records()
    lines = [
        {"image": "a.jpg", "dwc": fields, "draft": True, "rules": "1"},
        {"image": "b.jpg", "dwc": fields, "draft": True},
        {"image": "c.jpg", "dwc": fields, "draft": "false", "rules": "1"},
        {"image": "d.jpg", "dwc": fields},
    ]
    legacy = tmp_path / "drafts.jsonl"
    legacy.write_text("".join(json.dumps(line) + "\n" for line in lines))

    herbx("import", str(legacy), "--run-id", "d")
    projected = herbx("project", "raw.jsonl", "--run", "d").stdout.splitlines()

    marks = {
        item["image"]: (item.get("draft"), item.get("rules"))
        for item in map(json.loads, projected)
    }
    assert marks == {
        "a.jpg": (True, "1"),
        "b.jpg": (True, "unknown"),
        "c.jpg": (None, None),
        "d.jpg": (None, None),
    }
