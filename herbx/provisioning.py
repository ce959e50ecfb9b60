"""Making a new API key: through OpenRouter's management API or a team's own command.

Either way the new secret ends up in the keys file (written atomically, mode 0600) and
nowhere else: not in the ledger, not in a message, not on a terminal. A command's own
output is never shown, since it may print the key it made.
"""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass

import msgspec

from herbx.errors import HerbxError
from herbx.events import KeyProvisioned
from herbx.keys import Redactor, clean, fingerprint
from herbx.keystore import KeysFile
from herbx.openrouter import Client, TransportFailure

DEFAULT_KEY_LIMIT = 15.0
DEFAULT_COMMAND_TIMEOUT = 30.0


class ProvisioningFailed(HerbxError):
    """No new key could be made; ``reason`` is a stable short code."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class NewKey:
    """A key that was just made; ``secret`` is in the keys file and only there."""

    secret: str
    name: str
    limit: float | None
    openrouter_hash: str | None
    via: str

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.secret)

    def event(self) -> KeyProvisioned:
        """The ledger's record of this key: everything but the secret."""
        return KeyProvisioned(
            key_fingerprint=self.fingerprint,
            name=self.name,
            limit=self.limit,
            openrouter_hash=self.openrouter_hash,
            via=self.via,
        )


class ApiProvisioner:
    """Makes keys with ``POST /keys`` using a management key."""

    via = "management_api"

    def __init__(
        self,
        client: Client,
        management_key: str,
        keys_file: KeysFile,
        *,
        limit: float | None = DEFAULT_KEY_LIMIT,
        limit_reset: str | None = None,
        timeout: float = DEFAULT_COMMAND_TIMEOUT,
    ):
        self.client = client
        self.management_key = clean(management_key)
        self.keys_file = keys_file
        self.limit = limit
        self.limit_reset = limit_reset
        self.timeout = timeout

    def provision(self, name: str) -> NewKey:
        """Create a key, store it as the keys file's current key, and return it."""
        try:
            reply = self.client.create_key(
                self.management_key, name, self.limit, self.limit_reset, self.timeout
            )
        except TransportFailure as exc:
            raise ProvisioningFailed(
                f"provisioning request failed: {exc.message}", exc.reason
            ) from None

        try:
            body = msgspec.json.decode(reply.text)
        except msgspec.DecodeError:
            body = None
        if reply.status not in (200, 201) or not isinstance(body, dict):
            message = _error_message(body) or f"HTTP {reply.status}"
            raise ProvisioningFailed(
                f"OpenRouter refused to make a key (HTTP {reply.status}: {message}); "
                "check OPENROUTER_PROVISIONING_KEY",
                f"http_{reply.status}",
            )

        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        # The secret comes once, at the top level; some documentation puts it in data.
        secret = body.get("key") or data.get("key")
        if not isinstance(secret, str) or not secret.strip():
            raise ProvisioningFailed(
                "OpenRouter answered without the new key's secret", "no_secret"
            )
        secret = clean(secret)
        self.keys_file.set_current(secret, f"provisioned by herbx as {name}")
        limit = data.get("limit", self.limit)
        return NewKey(
            secret=secret,
            name=name,
            limit=float(limit) if isinstance(limit, int | float) else None,
            openrouter_hash=data.get("hash")
            if isinstance(data.get("hash"), str)
            else None,
            via=self.via,
        )


class CommandProvisioner:
    """Runs a team's own provisioning command, which writes the keys file itself."""

    via = "command"

    def __init__(
        self,
        command: str,
        keys_file: KeysFile,
        *,
        limit: float | None = DEFAULT_KEY_LIMIT,
        timeout: float = DEFAULT_COMMAND_TIMEOUT,
        redact: Redactor | None = None,
    ):
        self.command = command
        self.keys_file = keys_file
        self.limit = limit
        self.timeout = timeout
        self.redact = redact or Redactor()

    def provision(self, name: str) -> NewKey:
        """Run the command, then return the key it added to the keys file."""
        # Created first, so that a script appending to it keeps the owner-only mode.
        self.keys_file.ensure()
        before = {entry.value for entry in self.keys_file.api_keys()}
        env = {
            **os.environ,
            "HERBX_KEY_NAME": name,
            "HERBX_KEY_LIMIT": "" if self.limit is None else str(self.limit),
            "HERBX_KEYS_FILE": str(self.keys_file.path),
        }
        try:
            process = subprocess.Popen(
                ["/bin/sh", "-c", self.command],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            raise ProvisioningFailed(
                f"cannot start the provisioning command: {exc.strerror}",
                "command_error",
            ) from None
        try:
            _out, err = process.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            # Kill the whole group: a shell script's children would outlive the shell.
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise ProvisioningFailed(
                f"the provisioning command did not finish within {self.timeout:g} s",
                "command_timeout",
            ) from None

        if process.returncode == 127:
            raise ProvisioningFailed(
                f"the provisioning command was not found ({self.command.split()[0]}); "
                "fix --provision-command or HERBX_PROVISION_COMMAND",
                "command_missing",
            )
        if process.returncode != 0:
            last = _last_line(self.redact(err.decode("utf-8", "replace")))
            raise ProvisioningFailed(
                f"the provisioning command failed with exit {process.returncode}"
                + (f": {last}" if last else ""),
                "command_failed",
            )

        new = [e for e in self.keys_file.api_keys() if e.value not in before]
        if not new:
            raise ProvisioningFailed(
                f"the provisioning command added no key to {self.keys_file.path}",
                "command_no_key",
            )
        return NewKey(
            secret=new[0].value,
            name=name,
            limit=self.limit,
            openrouter_hash=None,
            via=self.via,
        )


def _error_message(body) -> str:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message", ""))
    return ""


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""
