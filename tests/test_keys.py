"""Key rotation against the fake OpenRouter: never a storm, never a leak."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from herbx.fakeserver import Fault
from herbx.keys import fingerprint
from herbx.keystore import KeysFile

from .conftest import KEY, MANAGEMENT

SECOND = "sk-or-v1-testkey-bravo-000000000000000000000000000000000000000002"
# One request at a time, so that tests can name which key each request used.
FAST = ["--confirm-pause", "0.01", "--backoff", "0.01", "--concurrency", "1"]


@pytest.fixture
def managed(fake, herbx):
    """The fake account has a management key, and herbx knows it."""
    fake.add_management_key(MANAGEMENT)
    herbx.env["OPENROUTER_PROVISIONING_KEY"] = MANAGEMENT
    return herbx


def chats(fake) -> list:
    return [r for r in fake.requests if r.path.endswith("/chat/completions")]


def lines(herbx, run_id: str) -> list[dict]:
    path = herbx.workdir / "runs" / run_id / "raw.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def assert_no_secret_anywhere(herbx, result, *secrets: str) -> None:
    """No full secret in the ledger, the run's files, stdout or stderr."""
    for secret in secrets:
        needle = secret.strip().encode()
        for path in herbx.workdir.rglob("*"):
            if path.is_file() and path.name not in ("keys.env",):
                assert needle not in path.read_bytes(), (secret[:16], path)
        assert secret.strip() not in result.stdout + result.stderr


def test_a_key_that_dies_at_specimen_six_is_replaced_by_exactly_one_new_key(
    managed, sheets, fake
):
    fake.key_fails_after(KEY, 5)

    result = managed("run", str(sheets), "--run-id", "k1", *FAST)

    assert result.returncode == 0, result.stderr
    assert len(lines(managed, "k1")) == 20
    assert len(fake.provisioned) == 1
    new = fake.provisioned[0]
    keys_used = [r.key for r in chats(fake)]
    assert keys_used[:7] == [KEY] * 7  # five good answers, the 401, its confirmation
    assert keys_used[7:] == [new] * 15
    assert_no_secret_anywhere(managed, result, KEY, new, MANAGEMENT)

    audit = managed("audit", "--run", "k1").stdout
    for line in (
        "key expired or invalid",
        "attempting rotation",
        "new key provisioned",
        f"fresh key loaded ({fingerprint(new)})",
        "retrying with the fresh key",
    ):
        assert line in audit
    store = managed.workdir / "keys.env"
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert KeysFile(store).api_keys()[0].value == new


def test_a_401_that_clears_after_a_pause_rotates_nothing(managed, sheets, fake):
    fake.script([Fault(status=401, message="User not found.")])

    result = managed("run", str(sheets), "--run-id", "t1", *FAST)

    assert result.returncode == 0, result.stderr
    assert fake.provisioned == []
    assert {r.key for r in chats(fake)} == {KEY}
    assert len(lines(managed, "t1")) == 20
    rejected = managed.rows("SELECT count(*) FROM events WHERE type='auth_rejected'")
    assert rejected == [(1,)]
    assert_no_secret_anywhere(managed, result, KEY, MANAGEMENT)


def test_a_fresh_key_refused_too_stops_after_one_key_and_resumes_with_a_good_one(
    herbx, sheets, fake, tmp_path
):
    script = tmp_path / "mint.sh"
    script.write_text(
        "#!/bin/sh\n"
        'printf "OPENROUTER_API_KEY=sk-or-v1-testkey-bogus-0000000000000000000000000'
        '0000000000009\\n" >> "$HERBX_KEYS_FILE"\n'
    )
    script.chmod(0o755)
    fake.key_fails_after(KEY, 5)

    stopped = herbx(
        "run", str(sheets), "--run-id", "f1", "--provision-command", str(script), *FAST
    )

    assert stopped.returncode == 1
    assert "manual intervention required" in stopped.stderr
    assert "Traceback" not in stopped.stderr
    provisioned = herbx.rows("SELECT count(*) FROM events WHERE type='key_provisioned'")
    assert provisioned == [(1,)]
    assert len(lines(herbx, "f1")) == 5
    bogus = "sk-or-v1-testkey-bogus-00000000000000000000000000000000000000009"
    assert_no_secret_anywhere(herbx, stopped, KEY, bogus)

    fake.add_key(SECOND)
    store = KeysFile(herbx.workdir / "keys.env")
    store.set_current(SECOND, "added by hand")

    resumed = herbx("run", str(sheets), "--run-id", "f1", *FAST)

    assert resumed.returncode == 0, resumed.stderr
    assert len(lines(herbx, "f1")) == 20
    assert herbx.rows("SELECT count(*) FROM events WHERE type='key_provisioned'") == [
        (1,)
    ]
    assert chats(fake)[-1].key == SECOND
    assert_no_secret_anywhere(herbx, resumed, KEY, SECOND)


def test_a_spent_key_403_is_rotated_without_confirmation(managed, sheets, fake):
    fake.script([Fault(status=403, message="Key limit exceeded (total limit)")])

    result = managed("run", str(sheets), "--run-id", "l1", *FAST)

    assert result.returncode == 0, result.stderr
    assert len(fake.provisioned) == 1
    assert [r.key for r in chats(fake)][1:] == [fake.provisioned[0]] * 20
    assert managed.rows("SELECT count(*) FROM events WHERE type='auth_rejected'") == [
        (0,)
    ]
    assert_no_secret_anywhere(managed, result, KEY, MANAGEMENT, *fake.provisioned)


def test_a_key_near_its_limit_is_rotated_before_it_is_refused(managed, sheets, fake):
    fake.add_key(KEY, limit=0.02)  # about three recorded answers' worth

    result = managed("run", str(sheets), "--run-id", "p1", *FAST)

    assert result.returncode == 0, result.stderr
    assert len(fake.provisioned) == 1
    assert all(r.status != 403 for r in fake.requests)
    reasons = managed.rows("SELECT payload FROM events WHERE type='key_retired'")
    assert json.loads(reasons[0][0])["reason"] == "limit_near"


def test_an_account_out_of_credit_stops_cleanly_without_rotation(managed, sheets, fake):
    fake.script([Fault(status=402)])

    result = managed("run", str(sheets), "--run-id", "c1", *FAST)

    assert result.returncode == 1
    assert "out of credit" in result.stderr
    assert fake.provisioned == []
    assert_no_secret_anywhere(managed, result, KEY, MANAGEMENT)
    resumed = managed("run", str(sheets), "--run-id", "c1", *FAST)
    assert resumed.returncode == 0
    assert len(lines(managed, "c1")) == 20


@pytest.mark.parametrize(
    ("mode", "needle"),
    [("fail", "HTTP 500"), ("hang", "did not finish")],
)
def test_a_provisioning_failure_stops_the_run_instead_of_looping(
    managed, sheets, fake, mode, needle
):
    fake.key_fails_after(KEY, 2)
    fake.provision_mode = mode

    result = managed(
        "run", str(sheets), "--run-id", "x1", "--provision-timeout", "1", *FAST
    )

    assert result.returncode == 1
    assert "key rotation stopped the run" in result.stderr
    assert "Traceback" not in result.stderr
    failed = managed.rows(
        "SELECT count(*) FROM events WHERE type='provisioning_failed'"
    )
    assert failed == [(1,)]
    assert len([r for r in fake.requests if r.path.endswith("/keys")]) <= 1
    assert_no_secret_anywhere(managed, result, KEY, MANAGEMENT, *fake.provisioned)


def test_a_key_returned_as_data_key_is_accepted(managed, sheets, fake):
    fake.key_fails_after(KEY, 2)
    fake.provision_mode = "data.key"

    result = managed("run", str(sheets), "--run-id", "d1", *FAST)

    assert result.returncode == 0, result.stderr
    assert chats(fake)[-1].key == fake.provisioned[0]
    assert_no_secret_anywhere(managed, result, KEY, MANAGEMENT, *fake.provisioned)


def test_a_missing_provisioning_command_stops_the_run_with_its_name(
    herbx, sheets, fake
):
    fake.key_fails_after(KEY, 2)

    result = herbx(
        "run", str(sheets), "--provision-command", "mint-a-key-please", *FAST
    )

    assert result.returncode == 1
    assert "provisioning command was not found (mint-a-key-please)" in result.stderr
    assert_no_secret_anywhere(herbx, result, KEY)


def test_no_run_provisions_more_keys_than_its_limit(managed, sheets, fake):
    fake.key_fails_after(KEY, 1)
    fake.provisioned_fail_after = 1

    result = managed(
        "run",
        str(sheets),
        "--run-id",
        "g1",
        "--max-keys-per-run",
        "2",
        "--validate-after",
        "0",
        *FAST,
    )

    assert result.returncode == 1
    assert "already provisioned 2 keys" in result.stderr
    assert len(fake.provisioned) == 2


def test_the_hourly_limit_counts_keys_from_every_run(managed, sheets, fake):
    fake.key_fails_after(KEY, 1)
    fake.provisioned_fail_after = 1
    managed("run", str(sheets), "--run-id", "h1", "--max-keys-per-run", "2", *FAST)

    fake.add_key(SECOND)
    fake.key_fails_after(SECOND, 1)
    result = managed(
        "run",
        str(sheets),
        "--run-id",
        "h2",
        "--max-keys-per-hour",
        "2",
        *FAST,
        env={"OPENROUTER_API_KEY": SECOND},
    )

    assert result.returncode == 1
    assert "2 keys were provisioned in the last hour" in result.stderr
    assert len(fake.provisioned) == 2


def test_a_key_with_a_trailing_newline_is_trimmed_and_never_leaked(herbx, sheets, fake):
    result = herbx(
        "run", str(sheets), "--run-id", "n1", env={"OPENROUTER_API_KEY": KEY + "\n"}
    )

    assert result.returncode == 0, result.stderr
    assert {r.key for r in chats(fake)} == {KEY}
    assert_no_secret_anywhere(herbx, result, KEY)


def test_a_keys_file_others_can_read_is_refused_with_the_chmod_that_fixes_it(
    herbx, sheets
):
    store = herbx.workdir / "keys.env"
    store.write_text(f"OPENROUTER_API_KEY={KEY}\n")
    store.chmod(0o644)

    result = herbx("run", str(sheets), env={"OPENROUTER_API_KEY": ""})

    assert result.returncode == 2
    assert f"chmod 600 {store}" in result.stderr
    assert KEY not in result.stderr


def test_the_keys_file_is_used_when_the_environment_has_no_key(herbx, sheets, fake):
    store = KeysFile(herbx.workdir / "keys.env")
    store.write(f"# mine\nexport OPENROUTER_API_KEY=' {KEY} '\n")

    result = herbx("run", str(sheets), "--limit", "2", env={"OPENROUTER_API_KEY": ""})

    assert result.returncode == 0, result.stderr
    assert {r.key for r in chats(fake)} == {KEY}


def test_a_key_added_to_the_file_by_hand_is_picked_up_without_provisioning(
    herbx, sheets, fake
):
    fake.add_key(SECOND)
    fake.key_fails_after(KEY, 3)
    KeysFile(herbx.workdir / "keys.env").write(f"OPENROUTER_API_KEY_SPARE={SECOND}\n")

    result = herbx("run", str(sheets), "--run-id", "s1", *FAST)

    assert result.returncode == 0, result.stderr
    assert fake.provisioned == []
    assert chats(fake)[-1].key == SECOND


def test_keys_provision_writes_a_0600_file_and_prints_only_a_fingerprint(managed, fake):
    result = managed(
        "keys",
        "provision",
        "--name",
        "field team",
        "--limit",
        "5",
        "--base-url",
        fake.url,
        env={"OPENROUTER_API_KEY": ""},
    )

    assert result.returncode == 0, result.stderr
    new = fake.provisioned[0]
    assert new not in result.stdout + result.stderr
    assert fingerprint(new) in result.stdout
    store = managed.workdir / "keys.env"
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert KeysFile(store).api_keys()[0].value == new
    assert managed.rows("SELECT count(*) FROM events WHERE type='key_provisioned'") == [
        (1,)
    ]


def test_keys_balance_shows_usage_and_limit(herbx, fake):
    fake.add_key(KEY, limit=15.0)

    result = herbx("keys", "balance", "--base-url", fake.url)

    assert result.returncode == 0, result.stderr
    assert "limit      $15.0000" in result.stdout
    assert fingerprint(KEY) in result.stdout and KEY not in result.stdout


def test_keys_list_joins_the_account_with_the_ledger(managed, sheets, fake):
    fake.key_fails_after(KEY, 2)
    managed("run", str(sheets), "--run-id", "j1", "--limit", "4", *FAST)

    result = managed("keys", "list", "--base-url", fake.url)

    assert result.returncode == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    new = next(row for row in rows if row[4] == fingerprint(fake.provisioned[0]))
    assert new[0] == "herbx j1 #1"
    assert new[6] == "2" and new[9] == "j1"
    assert all(secret not in result.stdout for secret in (KEY, fake.provisioned[0]))


def test_keys_rotate_makes_a_new_current_key(managed, fake):
    first = managed("keys", "rotate", "--base-url", fake.url)
    second = managed("keys", "rotate", "--base-url", fake.url)

    assert first.returncode == second.returncode == 0
    store = KeysFile(managed.workdir / "keys.env")
    assert store.api_keys()[0].value == fake.provisioned[1]
    assert fake.provisioned[0] in {entry.value for entry in store.api_keys()}


def test_keys_list_without_a_management_key_says_what_to_set(herbx, fake):
    result = herbx("keys", "list", "--base-url", fake.url)

    assert result.returncode == 2
    assert "OPENROUTER_PROVISIONING_KEY" in result.stderr


def test_the_keys_file_is_written_atomically_with_mode_0600(tmp_path: Path):
    store = KeysFile(tmp_path / "deep" / "keys.env")

    store.set_current(KEY, "first")
    store.set_current(SECOND, "second")

    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert [entry.name for entry in store.api_keys()] == [
        "OPENROUTER_API_KEY",
        "OPENROUTER_API_KEY_2",
    ]
    assert store.get("OPENROUTER_API_KEY") == SECOND
    assert not [p for p in os.listdir(store.path.parent) if p.endswith(".tmp")]


def test_a_key_found_invalid_in_one_run_is_not_tried_by_the_next(managed, sheets, fake):
    fake.key_fails_after(KEY, 2)
    managed("run", str(sheets), "--run-id", "a1", "--limit", "4", *FAST)
    before = len(chats(fake))

    again = managed("run", str(sheets), "--run-id", "a2", "--limit", "2", *FAST)

    assert again.returncode == 0, again.stderr
    assert KEY not in {r.key for r in chats(fake)[before:]}
    assert len(fake.provisioned) == 1


def test_a_limit_reset_is_sent_with_the_new_key(managed, fake):
    result = managed(
        "keys", "provision", "--limit-reset", "monthly", "--base-url", fake.url
    )

    assert result.returncode == 0, result.stderr
    sent = [r for r in fake.requests if r.method == "POST" and r.path.endswith("/keys")]
    assert sent[0].body_json["limit_reset"] == "monthly"


def test_a_key_dying_under_eight_concurrent_requests_is_replaced_exactly_once(
    managed, sheets, fake
):
    fake.key_fails_after(KEY, 5)
    fake.latency = 0.05

    result = managed(
        "run",
        str(sheets),
        "--run-id",
        "k8",
        "--confirm-pause",
        "0.2",
        "--concurrency",
        "8",
    )

    assert result.returncode == 0, result.stderr
    assert len(lines(managed, "k8")) == 20
    assert len(fake.provisioned) == 1
    new = fake.provisioned[0]
    by_arrival = sorted(chats(fake), key=lambda r: r.time)
    first_new = next(i for i, r in enumerate(by_arrival) if r.key == new)
    assert {r.key for r in by_arrival[first_new:]} == {new}
    assert_no_secret_anywhere(managed, result, KEY, new, MANAGEMENT)
