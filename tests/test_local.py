"""The local engine: OCR from the rapidocr wheel and label rules, no key, no network.

One real run over three sheets (a typed label printed sideways, an upright label, and
that upright sheet turned a quarter without an EXIF tag) is shared by the end-to-end
tests; the rules are also scored over the stored readings of all 20 sample sheets
against the truth table in tests/data, without running OCR.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import msgspec
import pytest
from PIL import Image

from herbx import accuracy, labels, replay
from herbx.events import OcrLine
from herbx.ledger import Ledger
from tests.conftest import SAMPLES

DATA = Path(__file__).parent / "data"
TYPED_SIDEWAYS = "002e8642edeadc9390dc630b8bd0a0a656e6b2bf76894943df0032b4b3916ee4"
UPRIGHT = "0ac1e5434f92ece1a60dde97febc243c72b3d26edc8d64b19e46b80d8306dab3"

# Loaded before herbx in the child process: any connection off this machine fails
# loudly, so a run that passes has downloaded nothing.
NO_NETWORK = """
import socket
_connect = socket.socket.connect
def _local_only(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and host not in ("127.0.0.1", "::1", "localhost"):
        raise OSError(f"test: network is off (tried {address!r})")
    return _connect(self, address)
socket.socket.connect = _local_only
"""


def run_herbx(workdir: Path, *args: str, extra_path: Path | None = None):
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(workdir),
        "HERBX_LEDGER": str(workdir / "herbx.db"),
        "HERBX_KEYS_FILE": str(workdir / "keys.env"),
        "NO_COLOR": "1",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
    }
    if extra_path is not None:
        env["PYTHONPATH"] = str(extra_path)
    return subprocess.run(
        [sys.executable, "-m", "herbx", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """A finished local run over three sheets, with no key and no network."""
    work = tmp_path_factory.mktemp("local")
    sheets = work / "sheets"
    sheets.mkdir()
    for name in (TYPED_SIDEWAYS, UPRIGHT):
        shutil.copy(SAMPLES / f"{name}.jpg", sheets)
    # The upright sheet turned a quarter clockwise, with no EXIF tag to undo it.
    with Image.open(SAMPLES / f"{UPRIGHT}.jpg") as image:
        from PIL import ImageOps

        ImageOps.exif_transpose(image).rotate(-90, expand=True).save(
            sheets / "turned.png"
        )
    guard = work / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(NO_NETWORK)

    result = run_herbx(
        work, "run", "sheets", "--run-id", "local", "--out", "out", extra_path=guard
    )
    assert result.returncode == 0, result.stderr
    return work, result


def events(work: Path, kind: str) -> list[dict]:
    with Ledger.open(str(work / "herbx.db")) as ledger:
        return [msgspec.to_builtins(r.event) for r in ledger.read(types=(kind,))]


def test_with_no_key_the_local_engine_runs_and_says_so(local_run):
    work, result = local_run

    assert "no API key configured" in result.stderr
    assert "local OCR engine" in result.stderr
    assert "3 saved, 0 failed" in result.stdout
    lines = [json.loads(line) for line in (work / "out/raw.jsonl").open()]
    assert len(lines) == 3
    assert all(line["draft"] is True for line in lines)
    assert all(line["rules"] == labels.VERSION for line in lines)
    assert {line["model"] for line in lines} == {"local/rapidocr"}


def test_a_typed_label_printed_sideways_is_turned_and_read(local_run):
    work, _ = local_run

    lines = {
        json.loads(line)["image"]: json.loads(line)
        for line in (work / "out/raw.jsonl").open()
    }
    fields = lines[f"{TYPED_SIDEWAYS}.jpg"]["dwc"]
    assert fields["scientificName"]["value"].startswith("Setaria viridis")
    assert fields["eventDate"]["value"] == "1985-08-22"
    assert fields["recordedBy"]["value"] == "Thomas"
    assert fields["recordNumber"]["value"] == "1073b"
    assert fields["stateProvince"]["value"] == "Saskatchewan"
    # The printed header's "Agriculture Canada" is the institution, not a country.
    assert "country" not in fields

    reads = {e["specimen_id"]: e for e in events(work, "ocr_read")}
    assert reads[TYPED_SIDEWAYS]["rotation"] == 270
    assert reads[UPRIGHT]["exif_orientation"] == 6
    assert reads[UPRIGHT]["rotation"] == 0


def test_a_sheet_lying_sideways_without_exif_reads_like_the_upright_one(local_run):
    work, _ = local_run

    lines = {
        json.loads(line)["image"]: json.loads(line)["dwc"]
        for line in (work / "out/raw.jsonl").open()
    }
    upright, turned = lines[f"{UPRIGHT}.jpg"], lines["turned.png"]
    assert upright["scientificName"]["value"].startswith("Senecio")
    assert turned["scientificName"]["value"] == upright["scientificName"]["value"]
    assert turned["locality"]["value"] == upright["locality"]["value"]
    reads = [e for e in events(work, "ocr_read") if e["rotation"] == 90]
    assert len(reads) == 1


def test_the_ledger_keeps_the_text_boxes_and_what_read_them(local_run):
    work, _ = local_run

    for read in events(work, "ocr_read"):
        assert read["engine"]["name"] == "rapidocr"
        assert read["engine"]["version"] == "3.10.0"
        assert set(read["engine"]["models"]) == {"det", "rec", "cls"}
        assert read["lines"], "no text stored"
        text, score, box = read["lines"][0]
        assert isinstance(text, str) and 0 <= score <= 1
        left, top, right, bottom = box
        assert 0 <= left < right <= read["width"]
        assert 0 <= top < bottom <= read["height"]
    saved = events(work, "result_saved")
    assert {e["rules_version"] for e in saved} == {labels.VERSION}


def test_audit_projections_and_reports_work_on_a_local_run(local_run):
    work, _ = local_run

    audit = run_herbx(work, "audit", "--run", "local")
    assert audit.returncode == 0, audit.stderr
    assert audit.stdout.count("text read:") == 3
    assert "turned 270 degrees" in audit.stdout

    occurrences = run_herbx(work, "project", "occurrence.csv", "-o", "occ.csv")
    assert occurrences.returncode == 0, occurrences.stderr
    rows = (work / "occ.csv").read_text().splitlines()
    assert len(rows) == 4 and "Setaria viridis" in (work / "occ.csv").read_text()

    rebuilt = run_herbx(work, "project", "raw.jsonl", "--rebuild", "-o", "raw.jsonl")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert (work / "raw.jsonl").read_bytes() == (work / "out/raw.jsonl").read_bytes()

    report = run_herbx(work, "report", "success_rate", "--format", "json")
    assert report.returncode == 0, report.stderr
    (row,) = [json.loads(line) for line in report.stdout.splitlines()]
    assert (row["run_id"], row["saved"], row["failed"]) == ("local", 3, 0)
    latency = run_herbx(work, "report", "latency_percentiles", "--format", "json")
    (row,) = [json.loads(line) for line in latency.stdout.splitlines()]
    assert (row["model"], row["responses"]) == ("local/rapidocr", 3)
    assert row["p50_ms"] > 0
    attempts = run_herbx(work, "report", "retries_and_rotations", "--format", "json")
    assert json.loads(attempts.stdout)["attempts"] == 3
    listing = run_herbx(work, "report", "--list").stdout.splitlines()
    for name in [entry.split()[0] for entry in listing]:
        result = run_herbx(work, "report", name)
        assert result.returncode == 0, (name, result.stderr)
    costs = run_herbx(work, "costs", "--run", "local", "--format", "json")
    assert costs.returncode == 0, costs.stderr
    total = [json.loads(line) for line in costs.stdout.splitlines()][-1]
    assert (total["requests"], total["successes"]) == (3, 3)
    assert total["spend_usd"] == 0 and total["unknown_cost_attempts"] == 0


def test_estimate_plans_a_local_run_in_time_from_this_ledgers_reads(local_run):
    work, _ = local_run
    reads = [read["duration_ms"] for read in events(work, "ocr_read")]

    plan = run_herbx(work, "estimate", "sheets", "--engine", "local")

    assert plan.returncode == 0, plan.stderr
    assert "$0.0000 (no API, no key)" in plan.stdout
    assert f"{sorted(reads)[1] / 1000:.1f} s (median of this ledger's last 3" in (
        plan.stdout
    )
    assert "free-tier" not in plan.stdout and "keys needed" not in plan.stdout


def test_an_imported_local_raw_jsonl_keeps_its_model_and_draft_marks(
    local_run, tmp_path
):
    work, _ = local_run
    copy = tmp_path / "herbx.db"
    shutil.copy(work / "herbx.db", copy)
    ledger = ["--ledger", str(copy)]

    imported = run_herbx(work, "import", "out/raw.jsonl", "--run-id", "again", *ledger)
    assert imported.returncode == 0, imported.stderr

    lines = run_herbx(work, "project", "raw.jsonl", "--run", "again", *ledger).stdout
    drafts = [json.loads(line) for line in lines.splitlines()]
    assert [(line["draft"], line["rules"]) for line in drafts] == [(True, "1")] * 3
    runs = run_herbx(work, "runs", "--json", *ledger).stdout.splitlines()
    models = {row["run_id"]: row["model"] for row in map(json.loads, runs)}
    assert models["again"] == "local/rapidocr"
    occurrences = run_herbx(
        work, "project", "occurrence.csv", "--run", "again", *ledger
    ).stdout
    assert occurrences.count("draft transcription by OCR and label rules 1") == 3


def test_a_sheet_with_no_label_text_is_a_failed_attempt_in_reports(tmp_path):
    sheets = tmp_path / "sheets"
    sheets.mkdir()
    Image.new("RGB", (900, 600), "white").save(sheets / "blank.jpg")
    run = run_herbx(tmp_path, "run", "sheets", "--run-id", "blank", "--engine", "local")
    assert run.returncode == 0, run.stderr

    attempts = run_herbx(
        tmp_path,
        "sql",
        "SELECT succeeded, failure, latency_ms > 0 AS timed FROM requests",
        "--format",
        "json",
    )
    failures = run_herbx(tmp_path, "report", "failures_by_reason", "--format", "json")

    # The read itself worked, but no draft came of it: as an answer that cannot be
    # parsed, it is a failed attempt.
    assert json.loads(attempts.stdout) == {
        "succeeded": False,
        "failure": "no_text",
        "timed": True,
    }
    levels = [
        (row["level"], row["reason"])
        for row in map(json.loads, failures.stdout.splitlines())
    ]
    assert levels == [("attempt", "no_text"), ("specimen", "no_text")]


def test_darwin_core_exports_say_the_records_are_drafts(local_run):
    work, _ = local_run

    result = run_herbx(work, "project", "dwca.zip", "--run", "local", "-o", "a.zip")

    assert result.returncode == 0, result.stderr
    with zipfile.ZipFile(work / "a.zip") as archive:
        occurrences = archive.read("occurrence.txt").decode()
        eml = archive.read("eml.xml").decode()
    rows = occurrences.splitlines()
    remarks = rows[0].split("\t").index("occurrenceRemarks")
    assert all("draft" in row.split("\t")[remarks] for row in rows[1:])
    assert "drafts read by OCR and label rules" in eml
    assert "vision language model" not in eml


def test_a_rerun_of_a_local_run_uses_the_local_engine(local_run, tmp_path):
    work, _ = local_run
    # On a copy: the other tests count the shared ledger's reads and runs.
    copy = tmp_path / "herbx.db"
    shutil.copy(work / "herbx.db", copy)
    ledger = ["--ledger", str(copy)]

    refused = run_herbx(
        work, "rerun", "local", "--engine", "openrouter", "--run-id", "remote", *ledger
    )
    assert refused.returncode == 2 and "OPENROUTER_API_KEY" in refused.stderr
    assert "remote" not in run_herbx(work, "runs", *ledger).stdout

    again = run_herbx(
        work, "rerun", "local", "--run-id", "again", "--out", str(tmp_path), *ledger
    )
    assert again.returncode == 0, again.stderr
    diff = run_herbx(work, "diff", "local", "again", *ledger)
    assert diff.returncode == 0, diff.stderr
    assert "3 the same" in diff.stdout


def test_offline_replay_reproduces_the_run_without_ocr(local_run, tmp_path):
    work, _ = local_run

    result = run_herbx(work, "replay", "local", "--offline", "-o", str(tmp_path))

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "raw.jsonl").read_bytes() == (
        work / "out/raw.jsonl"
    ).read_bytes()


def test_a_later_rules_version_is_replayed_over_the_stored_text(
    local_run, tmp_path, monkeypatch
):
    work, _ = local_run
    original = labels.extract

    def newer(lines):
        fields = original(lines)
        if "locality" in fields:
            fields["locality"]["value"] = fields["locality"]["value"].upper()
        return fields

    monkeypatch.setattr(labels, "VERSION", "2-test")
    monkeypatch.setattr(labels, "extract", newer)
    # The replay must not read an image again: OCR is not even importable here.
    monkeypatch.setitem(sys.modules, "rapidocr", None)

    with Ledger.open(str(work / "herbx.db")) as ledger:
        replayed = replay.offline(ledger, "local", tmp_path)

    assert not replayed.identical
    assert replayed.comparison.counts[("locality", "changed")] == 3
    lines = [json.loads(line) for line in (tmp_path / "raw.jsonl").open()]
    assert {line["rules"] for line in lines} == {"2-test"}
    assert all(line["dwc"]["locality"]["value"].isupper() for line in lines), (
        "the newer rules were not applied"
    )


def test_without_the_offline_extra_the_error_says_how_to_install_it(tmp_path):
    (tmp_path / "sheets").mkdir()
    shutil.copy(SAMPLES / f"{UPRIGHT}.jpg", tmp_path / "sheets")
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(
        "import sys\nsys.modules['rapidocr'] = None\n"
    )

    result = run_herbx(tmp_path, "run", "sheets", "--engine", "local", extra_path=hide)

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert "pip install 'herbx[offline]'" in lines[0]
    assert not (tmp_path / "herbx.db").exists()


# -- the rules over stored readings of the 20 sample sheets ---------------------------


def stored_records() -> dict[str, dict]:
    readings = json.loads((DATA / "sample-readings.json").read_text())
    return {
        sha: labels.extract([OcrLine(*line) for line in reading["lines"]])
        for sha, reading in readings.items()
    }


def test_typed_labels_come_out_mostly_right():
    truth = accuracy.read_truth(DATA / "truth.csv")
    result = accuracy.score(truth, stored_records(), labels.TERMS)

    typed = result.total("typed")
    assert typed.truths > 50
    assert typed.exact_rate >= 0.6
    assert typed.near_rate >= 0.75


def test_a_field_not_on_the_label_stays_empty():
    truth = accuracy.read_truth(DATA / "truth.csv")
    result = accuracy.score(truth, stored_records(), labels.TERMS)

    assert result.total().invented == 0


def line(text: str, left: int, top: int, width: int = 200, height: int = 16):
    return OcrLine(text, 0.98, (left, top, left + width, top + height))


def test_checker_card_and_institution_header_are_not_label_values():
    fields = labels.extract(
        [
            line("calibrite", 40, 20, 60),
            line("colorchecker CLASSIC", 120, 20),
            line("12/22", 200, 300, 30),
            line("REGINA RESEARCH STATION", 700, 1200),
            line("AGRICULTURE CANADA", 720, 1218),
            line("REGINA, SASKATCHEWAN", 710, 1236),
            line("Botanical Name . Senecio vulgaris L.", 580, 1270, 300),
            line("Habitat . barley field", 580, 1300, 300),
        ]
    )

    assert fields["scientificName"]["value"] == "Senecio vulgaris L."
    assert fields["habitat"]["value"] == "barley field"
    # Regina and Saskatchewan are the station's address, not the collection site.
    for term in ("locality", "stateProvince", "country", "catalogNumber"):
        assert term not in fields


def test_a_value_typed_above_its_caption_and_onto_a_second_line():
    fields = labels.extract(
        [
            line("Setaria viridis", 700, 1340, 150),
            line("Botanical Name", 570, 1350, 120),
            line("54 kms N of Glaslyn", 680, 1404, 170),
            line("Locality", 570, 1420, 70),
            line("near the lake", 680, 1440, 120),
            line("M. Maw", 680, 1478, 60),
            line("Collector", 570, 1488, 80),
            line(".Date", 830, 1490, 48),
            line("08/18/83", 890, 1476, 78),
        ]
    )

    assert fields["scientificName"]["value"] == "Setaria viridis"
    assert fields["locality"]["value"] == "54 kms N of Glaslyn near the lake"
    assert fields["locality"]["confidence"] < fields["scientificName"]["confidence"]
    assert fields["recordedBy"]["value"] == "M. Maw"
    assert fields["eventDate"]["value"] == "1983-08-18"


@pytest.mark.parametrize(
    ("text", "iso", "sure"),
    [
        ("Aug. 22, 1985", "1985-08-22", True),
        ("22 Aug 1985", "1985-08-22", True),
        ("Sept 18 1984", "1984-09-18", True),
        ("22.VIII.1985", "1985-08-22", True),
        ("20/06/47", "1947-06-20", True),  # day first: 20 is no month
        ("08/18/83", "1983-08-18", True),  # month first: 18 is no month
        ("20/0.6/47..", "1947-06-20", True),  # a dot of the dotted line inside
        ("05/06/83", "1983-06-05", False),  # either way round: read day first
        ("1987 Aug 20", "1987-08-20", True),
        ("July 1931", "1931-07", True),
    ],
)
def test_label_dates_become_iso_8601(text, iso, sure):
    parsed = labels.parse_date(text)

    assert parsed is not None and parsed[0] == iso
    assert (parsed[1] >= 0.9) is sure


def test_an_ambiguous_date_gets_a_low_confidence():
    fields = labels.extract([line("Date . 05/06/83", 570, 1400)])

    assert fields["eventDate"]["value"] == "1983-06-05"
    assert fields["eventDate"]["confidence"] < 0.5


@pytest.mark.parametrize(
    ("lines", "expected", "absent"),
    [
        # Words of a value that spell a caption are not one.
        (
            ["Locality: Cold Lake, Alta.", "Collector: J. Smith"],
            {"locality": "Cold Lake, Alta", "recordedBy": "J. Smith"},
            (),
        ),
        (
            ["Habitat: late summer meadow", "Date: July 8, 1985"],
            {"habitat": "late summer meadow", "eventDate": "1985-07-08"},
            (),
        ),
        (
            ["Locality: Lost River, open country"],
            {"locality": "Lost River, open country"},
            ("scientificName", "country"),
        ),
        (
            ["Habitat: along the collector road"],
            {"habitat": "along the collector road"},
            ("recordedBy",),
        ),
        (
            ["Locality: Hwy No. 2, 5 mi. S of Moose Jaw"],
            {"locality": "Hwy No. 2, 5 mi. S of Moose Jaw"},
            ("recordNumber",),
        ),
        # A captioned line naming a station or farm is a value, not the header.
        (
            ["Locality: Experimental Farm, Indian Head, Sask."],
            {
                "locality": "Experimental Farm, Indian Head, Sask",
                "stateProvince": "Saskatchewan",
            },
            (),
        ),
        (
            ["Locality: 50°17'N 107°48'W, Swift Current"],
            {"locality": "50°17'N 107°48'W, Swift Current"},
            (),
        ),
        # Province abbreviations only as abbreviations.
        (["Habitat: man-made pond"], {"habitat": "man-made pond"}, ("stateProvince",)),
        (
            ["Locality: Alta Vista, Ottawa"],
            {"locality": "Alta Vista, Ottawa"},
            ("stateProvince",),
        ),
    ],
)
def test_label_words_that_look_like_captions_stay_in_their_value(
    lines, expected, absent
):
    fields = labels.extract(
        [line(text, 570, 1300 + 30 * row, 400) for row, text in enumerate(lines)]
    )

    assert {term: fields[term]["value"] for term in expected} == expected
    for term in absent:
        assert term not in fields


@pytest.mark.parametrize(
    "text",
    [
        "2010 Main Street",
        "Revised 2003",
        "Marsh 12 1985",
        "Box 1030, Swift Current, Sask. S9H 3X2",
        "Quadrat 3 x 4, Box 1985",
        "Hwy 1 v 20 2",
    ],
)
def test_no_collection_date_is_made_up_from_uncaptioned_text(text):
    fields = labels.extract([line(text, 570, 1300, 400)])

    assert "eventDate" not in fields


@pytest.mark.parametrize(
    "text",
    [
        "Date: Aug 12345678901234567890, 1985",
        "Date: 5 May 123456789012345678901",
        "Date: 12345678901234567890 ii 85",
        "Date: May 9999",
    ],
)
def test_impossible_dates_are_left_empty_not_fatal(text):
    fields = labels.extract([line(text, 570, 1300, 400)])

    assert fields.get("eventDate", {}).get("value", "1985-08") in ("1985-08",)


@pytest.fixture(scope="module")
def reader():
    from herbx.ocr import Reader

    return Reader()


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_images_no_sheet_has_fail_with_a_reason_instead_of_eating_memory(reader):
    from herbx.errors import ImageError

    # A 69-byte PNG claiming 40000 x 40000 pixels.
    header = bytearray(png(Image.new("L", (1, 1))))
    header[16:24] = (40000).to_bytes(4, "big") * 2
    cases = {
        "bomb.png": bytes(header),
        "strip.png": png(Image.new("RGB", (20000, 8), "white")),
        "empty.jpg": b"",
        "text.jpg": b"not an image at all",
    }
    for name, data in cases.items():
        with pytest.raises(ImageError) as caught:
            reader.read(data, name)
        message = str(caught.value)
        assert name in message and "object at 0x" not in message


def test_sixteen_bit_and_transparent_sheets_are_read_as_they_look(reader):
    from herbx.ocr import _upright

    grey = Image.new("I;16", (64, 64), 32768)
    clear = Image.new("RGBA", (64, 64), (0, 0, 0, 0))

    assert _upright(png(grey), "grey.png")[0].getpixel((0, 0))[0] in range(120, 136)
    assert _upright(png(clear), "clear.png")[0].getpixel((0, 0)) == (255, 255, 255)


def test_onnxruntime_telemetry_is_switched_off_before_it_starts(reader):
    assert os.environ["ORT_DISABLE_TELEMETRY"] == "1"


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
def test_a_local_run_opens_no_network_connection_at_all(tmp_path):
    """Native code too (onnxruntime's own telemetry): every connect() is traced."""
    (tmp_path / "sheets").mkdir()
    with Image.open(SAMPLES / f"{UPRIGHT}.jpg") as image:
        image.crop((0, 0, 400, 400)).save(tmp_path / "sheets" / "corner.png")
    trace = tmp_path / "connect.trace"
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "HERBX_LEDGER": str(tmp_path / "herbx.db"),
        "HERBX_KEYS_FILE": str(tmp_path / "keys.env"),
    }
    result = subprocess.run(
        [
            "strace",
            "-f",
            "-qq",
            "-e",
            "trace=connect",
            "-o",
            str(trace),
            sys.executable,
            "-m",
            "herbx",
            "run",
            "sheets",
            "--engine",
            "local",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stderr
    calls = trace.read_text().splitlines()
    off_machine = [c for c in calls if "AF_INET" in c and "127.0.0.1" not in c]
    assert off_machine == []
