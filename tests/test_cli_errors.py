"""A user's mistakes get one clear line, a non-zero exit, and nothing half-written."""

from __future__ import annotations

import pytest

from .conftest import KEY


def assert_one_line_error(result, *needles: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    for needle in needles:
        assert needle in lines[0]
    assert KEY not in result.stdout + result.stderr


def test_a_missing_folder_is_named_and_no_ledger_is_created(herbx, tmp_path):
    result = herbx("run", str(tmp_path / "nowhere"))

    assert_one_line_error(result, "no such directory", "nowhere")
    assert not herbx.ledger.exists()


def test_a_folder_without_images_is_named_and_no_ledger_is_created(herbx, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no sheets here")

    result = herbx("run", str(empty))

    assert_one_line_error(result, "no images", ".jpg")
    assert not herbx.ledger.exists()


def test_an_unknown_model_alias_lists_the_known_ones(herbx, sheets):
    result = herbx("run", str(sheets), "--model", "gpt-5-vision-ultra")

    assert_one_line_error(result, "unknown model alias", "qwen-vl-72b-free")
    assert not herbx.ledger.exists()


def test_a_missing_api_key_says_which_variable_to_set(herbx, sheets):
    # Without --engine openrouter, no key means the local engine (tests/test_local).
    result = herbx(
        "run", str(sheets), "--engine", "openrouter", env={"OPENROUTER_API_KEY": ""}
    )

    assert_one_line_error(result, "OPENROUTER_API_KEY")


def test_an_unreadable_prompt_file_is_named(herbx, sheets, tmp_path):
    result = herbx("run", str(sheets), "--prompt", str(tmp_path / "prompt.txt"))

    assert_one_line_error(result, "--prompt", "prompt.txt")


def test_an_unreachable_endpoint_stops_the_run_resumably(herbx, sheets):
    result = herbx(
        "run",
        str(sheets),
        "--run-id",
        "u1",
        "--backoff",
        "0.01",
        env={"OPENROUTER_BASE_URL": "http://127.0.0.1:9/api/v1"},
    )

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "cannot reach http://127.0.0.1:9/api/v1" in result.stderr
    assert "0 saved, 0 failed, 20 pending" in result.stdout
    assert herbx.rows("SELECT count(*) FROM events WHERE type='specimen_failed'") == [
        (0,)
    ]


@pytest.mark.parametrize("command", [["run", "SHEETS"], ["audit"], ["verify"]])
def test_a_file_that_is_not_a_ledger_is_refused_untouched(herbx, sheets, command):
    herbx.ledger.write_text("these are my notes\n")
    args = [str(sheets) if arg == "SHEETS" else arg for arg in command]

    result = herbx(*args)

    assert_one_line_error(result, "not a herbx ledger", str(herbx.ledger))
    assert herbx.ledger.read_text() == "these are my notes\n"


def test_audit_without_a_ledger_says_how_to_make_one(herbx):
    result = herbx("audit")

    assert_one_line_error(result, "no ledger at", "herbx run")
    assert not herbx.ledger.exists()


def test_resuming_with_another_model_is_refused(herbx, sheets):
    herbx("run", str(sheets), "--run-id", "m1", "--limit", "1")

    result = herbx("run", str(sheets), "--run-id", "m1", "--model", "gpt-4o")

    assert_one_line_error(result, "run m1 uses model openai/gpt-4o-mini")


def test_projecting_an_unknown_run_is_refused(herbx, sheets):
    herbx("run", str(sheets), "--run-id", "p1", "--limit", "1")

    result = herbx("project", "raw.jsonl", "--run", "nope")

    assert_one_line_error(result, "no run 'nope'")


def test_a_bad_audit_time_explains_the_accepted_forms(herbx, sheets):
    herbx("run", str(sheets), "--limit", "1")

    result = herbx("audit", "--since", "yesterday-ish")

    assert_one_line_error(result, "ISO 8601", "2h")


def test_every_command_has_help_text(herbx):
    listing = herbx("--help")
    for command in ("run", "audit", "project", "verify", "models"):
        assert command in listing.stdout
        result = herbx(command, "--help")
        assert result.returncode == 0
        assert len(result.stdout.splitlines()) > 3


def test_an_audit_range_that_ends_before_it_starts_is_refused(herbx, sheets):
    herbx("run", str(sheets), "--limit", "1")

    result = herbx("audit", "--since", "1h", "--until", "2h")

    assert_one_line_error(result, "--since 1h is after --until 2h")


@pytest.mark.parametrize(
    "url", ["127.0.0.1:9/api/v1", "ftp://127.0.0.1/api", "http://[::1"]
)
def test_a_malformed_base_url_is_refused_before_anything_is_recorded(
    herbx, sheets, url
):
    result = herbx("run", str(sheets), "--base-url", url)

    assert_one_line_error(result, "is not an http(s) URL")
    assert not herbx.ledger.exists()


def test_a_key_with_a_line_break_inside_is_refused_without_showing_it(herbx, sheets):
    broken = KEY[:30] + "\n" + KEY[30:]

    result = herbx("run", str(sheets), env={"OPENROUTER_API_KEY": broken})

    assert_one_line_error(result, "OPENROUTER_API_KEY", "line breaks")
    assert KEY[30:] not in result.stderr


@pytest.mark.parametrize("run_id", ["../escape", "/tmp/abs", ".hidden", "a b"])
def test_a_run_id_that_is_not_a_plain_name_is_refused(herbx, sheets, run_id):
    result = herbx("run", str(sheets), "--run-id", run_id)

    assert_one_line_error(result, "--run-id")


def test_an_output_folder_that_cannot_be_made_is_refused_before_recording(
    herbx, sheets
):
    (herbx.workdir / "afile").write_text("x")

    result = herbx("run", str(sheets), "--out", "afile/out")

    assert_one_line_error(result, "cannot create the output folder")
    assert herbx.rows("SELECT count(*) FROM events") == [(0,)]


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:", "mysql://x/y"])
def test_ledger_urls_that_cannot_keep_a_ledger_are_refused(herbx, url):
    result = herbx("audit", "--ledger", url)

    assert_one_line_error(result)


def test_auditing_a_run_that_does_not_exist_is_an_error(herbx, sheets):
    herbx("run", str(sheets), "--limit", "1")

    result = herbx("audit", "--run", "nope")

    assert_one_line_error(result, "no run 'nope'")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("report", "success_rate", "--format", "xml"), "--format"),
        (("run", ".", "--limit", "0"), "--limit"),
        (("costs", "--by", "week"), "--by"),
        (("nosuch",), "nosuch"),
    ],
)
def test_a_bad_option_value_is_one_line_naming_the_help_to_read(herbx, args, needle):
    result = herbx(*args)

    assert_one_line_error(result, needle, "--help)")
    assert result.returncode == 2
