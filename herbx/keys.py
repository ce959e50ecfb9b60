"""API keys as herbx handles them: by fingerprint, never by value.

A fingerprint shows the fixed, public part of a key, its last four characters and a
short hash of the whole secret, so two keys that end alike are still told apart and the
secret cannot be rebuilt from it.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import urlsplit, urlunsplit

from herbx.errors import UsageError

_PUBLIC_PREFIX = re.compile(r"^(sk-or-v1-|sk-or-|sk-)")


def clean(secret: str) -> str:
    """Trim whitespace around a key; a stray newline is a classic cause of 401."""
    return secret.strip()


def fingerprint(secret: str) -> str:
    """Return the printable name of a key, e.g. ``sk-or-v1-...3f9a#1c0e4b2d``."""
    secret = clean(secret)
    short_hash = hashlib.sha256(secret.encode("utf-8")).hexdigest()[:8]
    match = _PUBLIC_PREFIX.match(secret)
    prefix = match.group(1) if match else ""
    # A short secret would be half revealed by its tail; show only the hash then.
    tail = secret[-4:] if len(secret) - len(prefix) >= 24 else ""
    return f"{prefix}...{tail}#{short_hash}"


class Redactor:
    """Replaces every known secret in text with its fingerprint."""

    def __init__(self, secrets: list[str] | None = None):
        self._secrets: dict[str, str] = {}
        for secret in secrets or []:
            self.add(secret)

    def add(self, secret: str) -> None:
        """Remember a secret so that later text containing it is redacted."""
        secret = clean(secret)
        if len(secret) >= 8:
            self._secrets[secret] = fingerprint(secret)

    def __call__(self, text: str) -> str:
        for secret, name in self._secrets.items():
            if secret in text:
                text = text.replace(secret, name)
        return _LOOKS_LIKE_KEY.sub("[redacted key]", text)


_LOOKS_LIKE_KEY = re.compile(r"sk-or-v1-[0-9a-fA-F]{16,}|sk-[A-Za-z0-9_\-]{32,}")


def safe_url(url: str) -> str:
    """Return ``url`` with any password in it replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(unparseable URL)"
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username}:***@{host}" if parts.username else f"***@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


def safe_argument(argument: str) -> str:
    """Hide a URL password in a command-line argument (``URL`` or ``--opt=URL``)."""
    if "://" not in argument:
        return argument
    if argument.startswith("-") and "=" in argument:
        option, _, url = argument.partition("=")
        return f"{option}={safe_url(url)}"
    return safe_url(argument)


def check(secret: str, where: str) -> str:
    """Return a trimmed key, or refuse one that cannot be sent in a header."""
    secret = clean(secret)
    if (
        not secret.isascii()
        or not secret.isprintable()
        or any(c.isspace() for c in secret)
    ):
        raise UsageError(
            f"the key in {where} contains spaces, line breaks or non-ASCII characters; "
            "paste it again as one line"
        )
    return secret
