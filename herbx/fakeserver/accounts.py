"""The fake's account: its API keys, their limits and usage, and the keys API.

Keys are stored under their sha256 hash, as OpenRouter lists them. Usage only grows:
it is billed by completions and never resets, and a deleted key keeps its usage in
``cost_by_key``. Management keys may use the keys API and credits, never completions.
"""

import dataclasses
import hashlib
import secrets
import threading
from datetime import UTC, datetime
from typing import Any

from herbx.fakeserver.replies import Refused, Reply, error_reply, json_reply

KEY_PREFIX = "sk-or-v1-"
LIMIT_RESETS = (None, "daily", "weekly", "monthly")
EDITABLE = ("name", "disabled", "limit", "limit_reset", "include_byok_in_limit")
USAGE_FIELDS = ("usage", "usage_daily", "usage_weekly", "usage_monthly")


@dataclasses.dataclass
class Key:
    """One API key with its settings, usage and scripted failures."""

    secret: str
    name: str
    limit: float | None
    limit_reset: str | None = None
    include_byok_in_limit: bool = False
    disabled: bool = False
    deleted: bool = False
    management: bool = False
    expires_at: str | None = None
    created_at: str = ""
    updated_at: str | None = None
    usage: float = 0.0
    completions: int = 0
    fails_after: int | None = None
    fail_status: int = 401
    dead_status: int | None = None
    transient_401: int = 0


def hash_key(secret: str) -> str:
    """Return the 64-hex hash under which the fake lists a key."""
    return hashlib.sha256(secret.encode()).hexdigest()


def mask_key(secret: str) -> str:
    """Return the masked label OpenRouter shows for a key."""
    tail = secret.removeprefix(KEY_PREFIX)
    return f"{KEY_PREFIX}{tail[:3]}...{tail[-3:]}"


def now_iso() -> str:
    """Return the current UTC time as OpenRouter writes it, to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _expired(key: Key) -> bool:
    if not key.expires_at:
        return False
    expires = datetime.fromisoformat(key.expires_at.replace("Z", "+00:00"))
    return expires <= datetime.now(UTC)


class Accounts:
    """Keys, limits and billing totals; a layer of ``FakeOpenRouter``.

    The attributes below are set by ``FakeOpenRouter.__init__``.
    """

    accept_any_key: bool
    credits: float
    provision_mode: str
    provisioned: list[str]
    provisioned_fail_after: int | None
    _keys: dict[str, Key]
    _lock: threading.RLock
    _stopping: threading.Event

    def add_key(
        self,
        secret: str,
        limit: float | None = None,
        *,
        name: str = "",
        limit_reset: str | None = None,
        disabled: bool = False,
        expires_at: str | None = None,
    ) -> str:
        """Register an API key and return its hash; ``limit`` None means unlimited."""
        key = Key(
            secret,
            name or mask_key(secret),
            limit,
            limit_reset=limit_reset,
            disabled=disabled,
            expires_at=expires_at,
            created_at=now_iso(),
        )
        with self._lock:
            self._keys[hash_key(secret)] = key
        return hash_key(secret)

    def add_management_key(self, secret: str) -> str:
        """Register a management key (keys API and credits only); return its hash."""
        key_hash = self.add_key(secret, name="management")
        with self._lock:
            self._keys[key_hash].management = True
        return key_hash

    def disable_key(self, secret: str, disabled: bool = True) -> None:
        """Disable or re-enable a key, as PATCH /keys/{hash} does."""
        with self._lock:
            self._keys[hash_key(secret)].disabled = disabled

    def key_fails_after(self, secret: str, n: int, status: int = 401) -> None:
        """Make a key answer ``status`` for good after ``n`` more billed completions."""
        with self._lock:
            key = self._keys[hash_key(secret)]
            key.fails_after, key.fail_status = key.completions + n, status
            key.dead_status = status if n <= 0 else None

    def transient_401(self, secret: str, count: int) -> None:
        """Answer the next ``count`` requests with this key, on any path, with 401."""
        with self._lock:
            self._keys[hash_key(secret)].transient_401 = count

    def cost_by_key(self) -> dict[str, float]:
        """Return the USD billed to each API key by hash, deleted keys included."""
        with self._lock:
            keys = [key for key in self._keys.values() if not key.management]
            return {hash_key(key.secret): round(key.usage, 10) for key in keys}

    def total_cost(self) -> float:
        """Return the USD billed to all keys."""
        return round(sum(self.cost_by_key().values()), 10)

    def _auth(self, secret: str | None) -> Key:
        if not secret:
            raise Refused(error_reply(401, "No auth credentials found"))
        with self._lock:
            key = self._keys.get(hash_key(secret))
            if key is None and self.accept_any_key and secret.startswith(KEY_PREFIX):
                key = self._keys[self.add_key(secret, name="accepted")]
            if key is None or key.deleted or key.disabled or _expired(key):
                raise Refused(error_reply(401))
            if key.transient_401 > 0 or key.dead_status == 401:
                key.transient_401 = max(0, key.transient_401 - 1)
                raise Refused(error_reply(401))
            return key

    def _manager(self, secret: str | None) -> Key:
        key = self._auth(secret)
        if not key.management:
            message = "Only management keys can perform this operation"
            raise Refused(error_reply(403, message))
        return key

    def _check_account(self, key: Key) -> None:
        if key.management:
            message = "Management keys cannot be used for completions"
            raise Refused(error_reply(401, message))
        if key.dead_status is not None:
            raise Refused(error_reply(key.dead_status))
        if self.total_cost() >= self.credits:
            raise Refused(error_reply(402))
        if key.limit is not None and key.usage >= key.limit:
            window = key.limit_reset or "total"
            raise Refused(error_reply(403, f"Key limit exceeded ({window} limit)"))

    def _key_info(self, key: Key) -> dict[str, Any]:
        left = None if key.limit is None else round(max(0, key.limit - key.usage), 10)
        return {
            "label": mask_key(key.secret),
            "limit": key.limit,
            "limit_remaining": left,
            "limit_reset": key.limit_reset,
            "include_byok_in_limit": key.include_byok_in_limit,
            **dict.fromkeys(USAGE_FIELDS, round(key.usage, 10)),
            "byok_usage": 0.0,
            "expires_at": key.expires_at,
        }

    def _key_object(self, key: Key) -> dict[str, Any]:
        return {
            "hash": hash_key(key.secret),
            "name": key.name,
            "disabled": key.disabled,
            **self._key_info(key),
            "created_at": key.created_at,
            "updated_at": key.updated_at,
        }

    def _keys_api(self, method: str, route: str, query: dict, body: Any) -> Reply:
        if (method, route) == ("POST", "/keys"):
            return self._provision(body)
        if (method, route) == ("GET", "/keys"):
            disabled_too = query.get("include_disabled", ["false"])[0] == "true"
            offset = int(query.get("offset", ["0"])[0] or 0)
            with self._lock:
                keys = [k for k in reversed(self._keys.values()) if not k.management]
            keys = [
                k for k in keys if not k.deleted and (disabled_too or not k.disabled)
            ]
            page = [self._key_object(k) for k in keys[offset : offset + 100]]
            return json_reply(200, {"data": page})

        with self._lock:
            key = self._keys.get(route.removeprefix("/keys/"))
        if key is None or key.deleted or key.management:
            return error_reply(404, "Key not found")
        if method == "DELETE":
            key.deleted = True
            return json_reply(200, {"deleted": True})
        if method == "PATCH":
            body = body if isinstance(body, dict) else {"limit_reset": "invalid"}
            if body.get("limit_reset") not in LIMIT_RESETS:
                return error_reply(400, "Invalid key update")
            with self._lock:
                for field in set(EDITABLE) & set(body):
                    setattr(key, field, body[field])
                key.updated_at = now_iso()
        return json_reply(200, {"data": self._key_object(key)})

    def _provision(self, body: Any) -> Reply:
        if self.provision_mode == "fail":
            return error_reply(500)
        if self.provision_mode == "hang":
            self._stopping.wait(60)
            return Reply(0, drop=True)
        if not isinstance(body, dict) or not body.get("name"):
            return error_reply(400, "Missing required field: name")
        if body.get("limit_reset") not in LIMIT_RESETS:
            return error_reply(
                400, "limit_reset must be daily, weekly, monthly or null"
            )

        secret = KEY_PREFIX + secrets.token_hex(32)
        key_hash = self.add_key(
            secret,
            body.get("limit"),
            name=body["name"],
            limit_reset=body.get("limit_reset"),
            expires_at=body.get("expires_at"),
        )
        with self._lock:
            key = self._keys[key_hash]
            key.include_byok_in_limit = bool(body.get("include_byok_in_limit"))
            self.provisioned.append(secret)
        if self.provisioned_fail_after is not None:
            self.key_fails_after(secret, self.provisioned_fail_after)
        data = self._key_object(key)
        if self.provision_mode == "data.key":
            return json_reply(201, {"data": {**data, "key": secret}})
        return json_reply(201, {"data": data, "key": secret})
