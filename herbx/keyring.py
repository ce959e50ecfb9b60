"""Which API key a run uses, and what it does when the endpoint refuses that key.

The policy follows what each refusal means:
- 401: confirmed by one retry after a pause (OpenRouter has transient 401s); if it
  persists, the key is retired and replaced. A replacement that is refused too stops
  the run: something is wrong that a new key will not fix.
- 403 "Key limit exceeded": the key is spent; it is replaced at once.
- Before that: with the key's limit known, a key whose spend plus the costliest
  request so far would cross its limit is replaced before the request is sent.
- A replacement is first looked for in the keys file (a key added by hand), and only
  then made, within limits per run and per hour, one provisioning at a time.
Every step is an event; secrets never leave this object and the keys file.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import msgspec

from herbx import events as ev
from herbx.errors import RunStopped, UsageError
from herbx.keys import Redactor, clean, fingerprint
from herbx.keystore import KeysFile
from herbx.ledger import Ledger, Record
from herbx.openrouter import Client, Failure, TransportFailure
from herbx.provisioning import ApiProvisioner, CommandProvisioner, ProvisioningFailed

Provisioner = ApiProvisioner | CommandProvisioner


@dataclass
class KeyPolicy:
    """Knobs of the rotation policy; the defaults suit a day-long unattended run."""

    confirm_pause: float = 5.0
    max_per_run: int = 3
    max_per_hour: int = 3


@dataclass
class KeySources:
    """Where a run finds keys and how it may make new ones."""

    keys_file: KeysFile
    env_key: str | None = None
    management_key: str | None = None
    provision_command: str | None = None
    key_limit: float | None = 15.0
    key_limit_reset: str | None = None
    command_timeout: float = 30.0
    policy: KeyPolicy = field(default_factory=KeyPolicy)

    def secrets(self) -> list[str]:
        """Every secret known up front, for redaction."""
        found = [self.env_key, self.management_key]
        found += [entry.value for entry in self.keys_file.entries()]
        return [secret for secret in found if secret]

    def has_any_key(self) -> bool:
        return bool(self.env_key or self.keys_file.api_keys())

    def can_provision(self) -> bool:
        return bool(self.provision_command or self.management_key)

    def provisioner(self, client: Client, redact: Redactor) -> Provisioner | None:
        """The command if one is configured, else the management API, else None."""
        if self.provision_command:
            return CommandProvisioner(
                self.provision_command,
                self.keys_file,
                limit=self.key_limit,
                timeout=self.command_timeout,
                redact=redact,
            )
        if self.management_key:
            return ApiProvisioner(
                client,
                self.management_key,
                self.keys_file,
                limit=self.key_limit,
                limit_reset=self.key_limit_reset,
                timeout=self.command_timeout,
            )
        return None


@dataclass
class _Key:
    secret: str
    fingerprint: str
    source: str
    limit: float | None = None
    spent: float = 0.0


class KeyRing:
    """The run's current key, its spend, and its replacement when refused."""

    def __init__(
        self,
        *,
        run_id: str,
        ledger: Ledger,
        record: Callable[[list[ev.Event]], list[Record]],
        sources: KeySources,
        client: Client,
        redact: Redactor,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.run_id = run_id
        self.ledger = ledger
        self.record = record
        self.keys_file = sources.keys_file
        self.env_key = clean(sources.env_key) if sources.env_key else None
        self.client = client
        self.provisioner = sources.provisioner(client, redact)
        self.policy = sources.policy
        self.redact = redact
        self.sleep = sleep
        self._lock = threading.RLock()
        self.current: _Key | None = None
        self.retired: set[str] = set()
        # Keys refused once, with the time their confirmation pause ended.
        self.suspect: dict[str, float] = {}
        self.fresh = False
        self.provisioned = 0
        self.costliest = 0.0
        for secret in sources.secrets():
            redact.add(secret)

    # -- starting --------------------------------------------------------------------

    def start(self, past: list[Record]) -> None:
        """Pick the first usable key, remembering what this run already retired.

        A key refused twice with 401 is invalid for good, so it is skipped whichever
        run retired it; a spent key may come back when its limit resets, so only this
        run's own retirements count for that.
        """
        for record in self.ledger.read(types=("key_retired",)):
            event = record.event
            if isinstance(event, ev.KeyRetired) and event.reason == "unauthorized":
                self.retired.add(event.key_fingerprint)
        for record in past:
            event = record.event
            if isinstance(event, ev.KeyRetired):
                self.retired.add(event.key_fingerprint)
            elif isinstance(event, ev.KeyProvisioned):
                self.provisioned += 1
            elif isinstance(event, ev.ResponseReceived) and event.cost:
                self.costliest = max(self.costliest, event.cost)

        candidate = self._next_candidate()
        if candidate is None:
            if self.retired and self.provisioner is None:
                raise UsageError(
                    f"every API key this run knows was refused; put a working key in "
                    f"{self.keys_file.path} as OPENROUTER_API_KEY=..., then run the "
                    "same command again"
                )
            if self.provisioner is None:
                raise UsageError(
                    "no API key: set OPENROUTER_API_KEY, or put OPENROUTER_API_KEY=... "
                    f"in {self.keys_file.path}"
                )
            with self._lock:
                self._provision(previous=None)
            return
        self._load(*candidate)

    def _candidates(self) -> list[tuple[str, str]]:
        found = []
        if self.env_key:
            found.append((self.env_key, "environment"))
        found.extend(
            (entry.value, f"keys file {entry.name}")
            for entry in self.keys_file.api_keys()
        )
        for secret, _ in found:
            self.redact.add(secret)
        return found

    def _next_candidate(self) -> tuple[str, str] | None:
        current = self.current.fingerprint if self.current else None
        for secret, source in self._candidates():
            name = fingerprint(secret)
            if name not in self.retired and name != current:
                return secret, source
        return None

    def _load(self, secret: str, source: str, limit: float | None = None) -> _Key:
        usage = None
        if limit is None:
            limit, usage = self._limit_and_usage(secret)
        key = _Key(secret, fingerprint(secret), source, limit, usage or 0.0)
        self.record(
            [
                ev.KeyLoaded(
                    key_fingerprint=key.fingerprint,
                    source=source,
                    limit=limit,
                    usage=usage,
                )
            ]
        )
        self.current = key
        return key

    def _limit_and_usage(self, secret: str) -> tuple[float | None, float | None]:
        # Best effort: an endpoint without GET /key (not OpenRouter) just means the
        # limit is unknown and only a 403 will tell that the key is spent.
        try:
            reply = self.client.key_info(secret, timeout=15.0)
            data = msgspec.json.decode(reply.text).get("data", {})
        except (TransportFailure, msgspec.DecodeError, AttributeError):
            return None, None
        if reply.status != 200 or not isinstance(data, dict):
            return None, None
        limit, usage = data.get("limit"), data.get("usage")
        return (
            float(limit) if isinstance(limit, int | float) else None,
            float(usage) if isinstance(usage, int | float) else None,
        )

    # -- during the run --------------------------------------------------------------

    def use(self) -> tuple[str, str]:
        """Return (secret, fingerprint) for the next request, rotating if it is due."""
        with self._lock:
            key = self.current
            assert key is not None
            if key.limit is not None and key.spent + self.costliest > key.limit:
                self._rotate(key, "limit_near")
            assert self.current is not None
            return self.current.secret, self.current.fingerprint

    def spent(self, key_fingerprint: str | None, cost: float | None) -> None:
        """Book a reported cost against the key that made the request."""
        if cost is None:
            return
        with self._lock:
            self.costliest = max(self.costliest, cost)
            if self.current and self.current.fingerprint == key_fingerprint:
                self.current.spent += cost

    def succeeded(self, key_fingerprint: str) -> None:
        """A request with this key worked: it is no longer fresh or suspect."""
        with self._lock:
            self.suspect.pop(key_fingerprint, None)
            if self.current and self.current.fingerprint == key_fingerprint:
                self.fresh = False

    def refused(self, key_fingerprint: str, failure: Failure, sent_at: float) -> None:
        """Handle a key-scoped failure; return when the request may be sent again.

        ``sent_at`` (``time.monotonic()`` when the request left) tells a confirming
        401 from one that was already on its way when the first arrived.
        """
        with self._lock:
            key = self.current
            if key is None or key.fingerprint != key_fingerprint:
                return  # another request already replaced that key
            if failure.reason == "unauthorized":
                if key_fingerprint not in self.suspect:
                    self.record([self._rejected(key, failure, confirmed=False)])
                    self.sleep(self.policy.confirm_pause)
                    self.suspect[key_fingerprint] = time.monotonic()
                    return
                if sent_at < self.suspect[key_fingerprint]:
                    return  # sent before the pause ended: it confirms nothing
                self.record([self._rejected(key, failure, confirmed=True)])
                if self.fresh:
                    self.record(
                        [
                            ev.KeyRetired(
                                key_fingerprint=key.fingerprint, reason="unauthorized"
                            )
                        ]
                    )
                    self.retired.add(key.fingerprint)
                    raise RunStopped(
                        "manual intervention required: the fresh key "
                        f"{key.fingerprint} was refused too ({failure.status}: "
                        f"{self.redact(failure.message)}); put a working key in "
                        f"{self.keys_file.path} as OPENROUTER_API_KEY=..., then run "
                        "the same command again to resume",
                        reason="manual_intervention",
                    )
                self._rotate(key, "unauthorized")
            else:
                self._rotate(key, failure.reason)

    def _rejected(
        self, key: _Key, failure: Failure, confirmed: bool
    ) -> ev.AuthRejected:
        return ev.AuthRejected(
            key_fingerprint=key.fingerprint,
            status=failure.status,
            message=self.redact(failure.message),
            confirmed=confirmed,
        )

    # -- rotation --------------------------------------------------------------------

    def _rotate(self, key: _Key, reason: str) -> None:
        self.record(
            [
                ev.RotationStarted(key_fingerprint=key.fingerprint, reason=reason),
                ev.KeyRetired(key_fingerprint=key.fingerprint, reason=reason),
            ]
        )
        self.retired.add(key.fingerprint)

        candidate = self._next_candidate()
        if candidate is not None:
            self._load(*candidate)
            self._rotated(key.fingerprint, "keys_file")
            return
        self._provision(previous=key.fingerprint)

    def _provision(self, previous: str | None) -> None:
        if self.provisioner is None:
            raise self._stop(
                "no_provisioner",
                f"no other API key to rotate to; put a working key in "
                f"{self.keys_file.path} as OPENROUTER_API_KEY=..., or set "
                "OPENROUTER_PROVISIONING_KEY for automatic rotation, then run the same "
                "command again",
            )
        if self.provisioned >= self.policy.max_per_run:
            raise self._stop(
                "limit_per_run",
                f"this run already provisioned {self.provisioned} keys "
                f"(--max-keys-per-run {self.policy.max_per_run}); check the account, "
                "then run the same command again",
            )
        recent = self._provisioned_last_hour()
        if recent >= self.policy.max_per_hour:
            raise self._stop(
                "limit_per_hour",
                f"{recent} keys were provisioned in the last hour "
                f"(--max-keys-per-hour {self.policy.max_per_hour}); wait, then run "
                "the same command again",
            )

        name = f"herbx {self.run_id} #{self.provisioned + 1}"
        with self.keys_file.lock():
            # Another process may have made a key while this one waited for the lock.
            candidate = self._next_candidate()
            if candidate is not None:
                self._load(*candidate)
                self._rotated(previous, "keys_file")
                return
            try:
                new = self.provisioner.provision(name)
            except ProvisioningFailed as exc:
                raise self._stop(exc.reason, self.redact(str(exc))) from None

        self.redact.add(new.secret)
        self.provisioned += 1
        self.record([new.event()])
        self._load(new.secret, f"provisioned ({new.via})", limit=new.limit)
        self._rotated(previous, new.via)

    def _rotated(self, previous: str | None, via: str) -> None:
        assert self.current is not None
        self.fresh = True
        self.record(
            [
                ev.KeyRotated(
                    key_fingerprint=self.current.fingerprint, previous=previous, via=via
                )
            ]
        )

    def _provisioned_last_hour(self) -> int:
        since = (datetime.now(UTC) - timedelta(hours=1)).strftime(
            "%Y-%m-%dT%H:%M:%S.%fZ"
        )
        return sum(1 for _ in self.ledger.read(types=("key_provisioned",), since=since))

    def _stop(self, reason: str, message: str) -> RunStopped:
        self.record([ev.ProvisioningFailed(reason=reason, message=message)])
        return RunStopped(f"key rotation stopped the run: {message}", reason=reason)
