"""herbx run against the fake OpenRouter, driven through the real command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from herbx.fakeserver import Fault

from .conftest import KEY


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_run_over_the_sample_sheets_writes_one_line_per_specimen(herbx, sheets):
    result = herbx("run", str(sheets), "--run-id", "r1")

    assert result.returncode == 0, result.stderr
    lines = read_lines(herbx.workdir / "runs/r1/raw.jsonl")
    assert len(lines) == 20
    assert len({line["specimen_id"] for line in lines}) == 20
    assert all("dwc" in line for line in lines)
    assert {"image", "model", "provider", "timestamp", "usage", "run_id"} <= set(
        lines[0]
    )
    assert "20 saved, 0 failed" in result.stdout


def test_recorded_answers_reach_raw_jsonl_unchanged(herbx, sheets):
    herbx("run", str(sheets), "--run-id", "r1")

    lines = read_lines(herbx.workdir / "runs/r1/raw.jsonl")
    by_image = {line["image"]: line for line in lines}
    first = by_image[
        "000e426d6ed12c347a937c47f568088a8daa32cdea3127d90f1eca5653831c84.jpg"
    ]
    assert first["dwc"]["scientificName"] == {
        "value": "Malva rotundifolia L.",
        "confidence": 0.9,
    }
    assert first["dwc"]["catalogNumber"]["value"] == "000084"
    assert first["usage"]["prompt_tokens"] == 39630


def test_raw_jsonl_rebuilt_from_the_ledger_is_byte_identical(herbx, sheets):
    herbx("run", str(sheets), "--run-id", "r1")
    rebuilt = herbx.workdir / "rebuilt.jsonl"

    result = herbx("project", "raw.jsonl", "--run", "r1", "-o", str(rebuilt))

    assert result.returncode == 0, result.stderr
    assert rebuilt.read_bytes() == (herbx.workdir / "runs/r1/raw.jsonl").read_bytes()


def test_environment_json_names_code_python_and_packages(herbx, sheets):
    herbx("run", str(sheets), "--run-id", "r1")

    env = json.loads((herbx.workdir / "runs/r1/environment.json").read_text())
    assert env["run_id"] == "r1"
    assert env["python"]["version"].startswith("3.")
    assert "sqlalchemy" in env["packages"]
    assert "git" in env and "platform" in env
    rebuilt = herbx("project", "environment.json", "--run", "r1")
    assert rebuilt.stdout == (herbx.workdir / "runs/r1/environment.json").read_text()


def test_resume_requests_only_the_specimens_without_a_result(herbx, sheets, fake):
    first = herbx("run", str(sheets), "--run-id", "r1", "--limit", "7")
    assert first.returncode == 0, first.stderr
    assert "7 saved, 0 failed, 13 pending" in first.stdout

    second = herbx("run", str(sheets), "--run-id", "r1")

    assert second.returncode == 0, second.stderr
    chats = [r for r in fake.requests if r.path.endswith("/chat/completions")]
    assert len(chats) == 20
    assert len({r.specimen for r in chats}) == 20
    assert len(read_lines(herbx.workdir / "runs/r1/raw.jsonl")) == 20
    assert "(resumed)" in second.stdout


def test_rerunning_a_finished_run_sends_nothing(herbx, sheets, fake):
    herbx("run", str(sheets), "--run-id", "r1")
    before = len(fake.requests)

    again = herbx("run", str(sheets), "--run-id", "r1")

    assert again.returncode == 0
    assert len(fake.requests) == before
    assert len(read_lines(herbx.workdir / "runs/r1/raw.jsonl")) == 20


def test_identical_files_under_two_names_are_one_specimen_sent_once(
    herbx, sheets, fake
):
    nested = sheets / "box2"
    nested.mkdir()
    one = sorted(sheets.glob("*.jpg"))[0]
    (nested / "copy.JPG").write_bytes(one.read_bytes())

    result = herbx("run", str(sheets), "--run-id", "r1", "--limit", "30")

    assert result.returncode == 0, result.stderr
    assert len(read_lines(herbx.workdir / "runs/r1/raw.jsonl")) == 20
    assert len([r for r in fake.requests if r.path.endswith("/completions")]) == 20


def test_same_name_in_two_folders_are_two_specimens(herbx, tmp_path, sheets):
    images = sorted(sheets.glob("*.jpg"))
    root = tmp_path / "two"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    (root / "a" / "sheet.jpg").write_bytes(images[0].read_bytes())
    (root / "b" / "sheet.jpg").write_bytes(images[1].read_bytes())

    result = herbx("run", str(root), "--run-id", "r1")

    assert result.returncode == 0, result.stderr
    lines = read_lines(herbx.workdir / "runs/r1/raw.jsonl")
    assert sorted(line["image"] for line in lines) == ["a/sheet.jpg", "b/sheet.jpg"]


def test_a_corrupt_image_fails_its_specimen_and_the_run_goes_on(herbx, sheets):
    (sheets / "zz-broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")

    result = herbx("run", str(sheets), "--run-id", "r1")

    assert result.returncode == 0, result.stderr
    lines = read_lines(herbx.workdir / "runs/r1/raw.jsonl")
    assert len(lines) == 21
    broken = [line for line in lines if line["image"] == "zz-broken.jpg"]
    assert broken[0]["error"].startswith("unreadable_image")
    assert "20 saved, 1 failed" in result.stdout


def test_a_reply_without_json_fails_its_specimen_and_fenced_json_is_recovered(
    herbx, sheets, fake
):
    fake.script([Fault(kind="prose"), Fault(kind="fenced")])

    result = herbx("run", str(sheets), "--run-id", "r1")

    assert result.returncode == 0, result.stderr
    lines = read_lines(herbx.workdir / "runs/r1/raw.jsonl")
    assert lines[0]["error"].startswith("unparseable")
    assert "dwc" not in lines[0]
    assert "dwc" in lines[1]
    assert "19 saved, 1 failed" in result.stdout


@pytest.mark.parametrize("concurrency", [1, 4])
def test_early_validation_stops_the_run_when_most_replies_fail(
    herbx, sheets, fake, concurrency
):
    fake.script([Fault(kind="prose", times=20)])

    result = herbx(
        "run", str(sheets), "--run-id", "r1", "--concurrency", str(concurrency)
    )

    assert result.returncode == 1
    assert "early validation failed: 0 of 5" in result.stderr
    # Nothing new starts after the check; requests already in flight may land.
    sent = len([r for r in fake.requests if r.path.endswith("/completions")])
    assert 5 <= sent <= 5 + concurrency - 1
    assert herbx.rows("SELECT count(*) FROM events WHERE type='run_aborted'") == [(1,)]
    assert "Traceback" not in result.stderr


def test_early_validation_threshold_and_size_are_configurable(herbx, sheets, fake):
    fake.script([Fault(kind="prose", times=2)])

    # One at a time: the two failures are then the first two to finish. With several
    # workers a success can overtake them and the fourth finisher pass the check.
    result = herbx(
        "run",
        str(sheets),
        "--run-id",
        "r1",
        "--concurrency",
        "1",
        "--validate-after",
        "4",
        "--validate-min-rate",
        "0.6",
    )

    assert result.returncode == 1
    assert "2 of 4 specimens succeeded" in result.stderr


def test_a_model_that_does_not_exist_stops_the_run_at_the_first_specimen(
    herbx, sheets, fake
):
    result = herbx("run", str(sheets), "--model", "acme/does-not-exist")

    assert result.returncode == 1
    assert "404" in result.stderr
    assert len([r for r in fake.requests if r.path.endswith("/completions")]) == 1


def test_the_api_key_never_reaches_the_ledger_or_the_output(herbx, sheets):
    result = herbx(
        "run",
        str(sheets),
        "--run-id",
        "r1",
        env={"OPENROUTER_API_KEY": KEY + "\n"},
    )

    assert result.returncode == 0, result.stderr
    secret = KEY.encode()
    assert secret not in herbx.ledger.read_bytes()
    for path in (herbx.workdir / "runs/r1").iterdir():
        assert secret not in path.read_bytes(), path
    assert KEY not in result.stdout + result.stderr
    fingerprints = herbx.rows(
        "SELECT DISTINCT key_fp FROM events WHERE key_fp IS NOT NULL"
    )
    assert len(fingerprints) == 1
    assert fingerprints[0][0].startswith("sk-or-v1-...0001#")


def test_a_resumed_run_keeps_writing_to_the_folder_it_started_in(herbx, sheets):
    herbx("run", str(sheets), "--run-id", "o1", "--out", "elsewhere", "--limit", "3")

    resumed = herbx("run", str(sheets), "--run-id", "o1")

    assert resumed.returncode == 0, resumed.stderr
    assert len(read_lines(herbx.workdir / "elsewhere/raw.jsonl")) == 20
    assert not (herbx.workdir / "runs").exists()


def test_the_same_command_without_a_run_id_resumes_the_unfinished_run(
    herbx, sheets, fake
):
    first = herbx("run", str(sheets), "--limit", "4")
    run_id = first.stdout.split()[1]

    second = herbx("run", str(sheets))

    assert second.returncode == 0, second.stderr
    assert f"resuming run {run_id}" in second.stderr
    assert len(read_lines(herbx.workdir / "runs" / run_id / "raw.jsonl")) == 20
    assert len([r for r in fake.requests if r.path.endswith("/completions")]) == 20


def test_new_run_starts_afresh_even_when_an_unfinished_run_matches(herbx, sheets):
    herbx("run", str(sheets), "--limit", "2")

    second = herbx("run", str(sheets), "--new-run", "--limit", "1")

    assert "resuming" not in second.stderr
    runs = herbx("runs").stdout.splitlines()[1:]
    assert len(runs) == 2


def test_an_image_gone_before_resume_fails_with_a_reason_instead_of_crashing(
    herbx, sheets
):
    herbx("run", str(sheets), "--run-id", "g1", "--limit", "1")
    last = sorted(sheets.glob("*.jpg"))[-1]
    last.unlink()

    resumed = herbx("run", str(sheets), "--run-id", "g1")

    assert resumed.returncode == 0, resumed.stderr
    lines = read_lines(herbx.workdir / "runs/g1/raw.jsonl")
    assert len(lines) == 20
    gone = [line for line in lines if line["image"] == last.name]
    assert gone[0]["error"].startswith("image_missing")


def test_resuming_over_another_folder_is_refused(herbx, sheets, tmp_path):
    herbx("run", str(sheets), "--run-id", "f1", "--limit", "1")
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.jpg").write_bytes(sorted(sheets.glob("*.jpg"))[0].read_bytes())

    result = herbx("run", str(other), "--run-id", "f1")

    assert result.returncode == 2
    assert f"run f1 is over {sheets}" in result.stderr


def test_runs_lists_each_run_with_its_status_and_counts(herbx, sheets, fake):
    herbx("run", str(sheets), "--run-id", "done")
    fake.script([Fault(kind="prose", times=5)])
    herbx("run", str(sheets), "--run-id", "bad", "--limit", "9")

    listing = herbx("runs", "--json")

    rows = {row["run_id"]: row for row in map(json.loads, listing.stdout.splitlines())}
    assert rows["done"]["status"] == "finished"
    assert (rows["done"]["saved"], rows["done"]["pending"]) == (20, 0)
    assert rows["bad"]["status"] == "stopped: validation"
    assert rows["bad"]["failed"] == 5


def test_a_model_id_the_endpoint_does_not_know_stops_at_the_first_specimen(
    herbx, sheets, fake
):
    result = herbx("run", str(sheets), "--model", "openai/gpt-4o-mni")

    assert result.returncode == 1
    assert "404" in result.stderr and "openai/gpt-4o-mni" in result.stderr


def test_a_key_echoed_by_the_server_is_scrubbed_from_everything(herbx, sheets, fake):
    fake.script([Fault(status=400, message=f"invalid key {KEY} for this model")])

    result = herbx("run", str(sheets), "--run-id", "e1")

    assert result.returncode == 0, result.stderr
    assert KEY.encode() not in herbx.ledger.read_bytes()
    assert KEY not in (herbx.workdir / "runs/e1/raw.jsonl").read_text()
    assert KEY not in herbx("audit").stdout
    assert "invalid key sk-or-v1-...0001#" in herbx("audit").stdout


def test_a_password_in_the_base_url_is_never_recorded(herbx, sheets, fake):
    url = fake.url.replace("http://", "http://proxyuser:Hunter2Secret@")

    # The fake refuses the request (the URL's basic auth replaces the bearer key);
    # what matters here is where the password went.
    result = herbx("run", str(sheets), "--limit", "1", "--base-url", url)

    assert "Hunter2Secret" not in result.stdout + result.stderr
    assert b"Hunter2Secret" not in herbx.ledger.read_bytes()
    assert "proxyuser:***@" in herbx("audit", "--kind", "run_started").stdout


def test_an_html_401_from_a_proxy_stops_the_run_instead_of_failing_sheets(
    herbx, sheets, fake
):
    fake.script([Fault(status=401, html=True)])

    result = herbx("run", str(sheets), "--run-id", "x1")

    assert result.returncode == 1
    assert "check --base-url" in result.stderr
    assert herbx.rows("SELECT count(*) FROM events WHERE type='specimen_failed'") == [
        (0,)
    ]


def test_resuming_after_a_validation_stop_tries_the_failed_specimens_again(
    herbx, sheets, fake
):
    fake.script([Fault(kind="prose", times=5)])
    stopped = herbx("run", str(sheets), "--run-id", "v1")
    assert stopped.returncode == 1

    resumed = herbx("run", str(sheets), "--run-id", "v1")

    assert resumed.returncode == 0, resumed.stderr
    assert "20 saved, 0 failed" in resumed.stdout


def test_requests_with_no_priced_answer_are_reported_as_unknown_cost(
    herbx, sheets, fake
):
    fake.script([Fault(kind="hang", seconds=5)])

    result = herbx(
        "run", str(sheets), "--run-id", "u1", "--read-timeout", "0.5", "--backoff", "0"
    )

    assert result.returncode == 0, result.stderr
    assert "(+1 attempt of unknown cost)" in result.stdout


def test_until_covers_the_whole_second_that_audit_lines_show(herbx, sheets):
    herbx("run", str(sheets), "--limit", "1")
    first = herbx("audit").stdout.splitlines()[0]
    second_shown = first[:19].replace(" ", "T")

    within = herbx("audit", "--since", second_shown, "--until", second_shown)

    assert first in within.stdout.splitlines()
