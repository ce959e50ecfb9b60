"""The keys file: API keys in dotenv form, readable by its owner alone.

Invariants:
- The file is created with mode 0600 and refused when group or others can read it.
- Every write goes to a temporary file that is fsynced and renamed over the old one,
  so a crash leaves the old file or the new one, never half of either.
- Values are trimmed: a trailing newline or space in a key is a classic cause of 401.
- ``OPENROUTER_API_KEY`` in the environment comes before anything in the file.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from herbx.errors import UsageError
from herbx.keys import check, clean
from herbx.locks import exclusive

API_KEY = "OPENROUTER_API_KEY"
MANAGEMENT_KEY = "OPENROUTER_PROVISIONING_KEY"


def default_path(env: dict[str, str] | None = None) -> Path:
    """Return ``HERBX_KEYS_FILE`` or ``~/.config/herbx/keys.env``."""
    env = os.environ if env is None else env
    if env.get("HERBX_KEYS_FILE"):
        return Path(env["HERBX_KEYS_FILE"]).expanduser()
    return Path("~/.config/herbx/keys.env").expanduser()


@dataclass(frozen=True)
class Entry:
    """One ``NAME=value`` line of the keys file."""

    name: str
    value: str


class KeysFile:
    """Reads and atomically rewrites one keys file."""

    def __init__(self, path: Path):
        self.path = path

    def exists(self) -> bool:
        return self.path.exists()

    def entries(self) -> list[Entry]:
        """Return the file's entries in order; a missing file has none."""
        if not self.path.exists():
            return []
        self._check_mode()
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(
                f"cannot read keys file {self.path}: {exc.strerror}"
            ) from exc
        return list(parse(text))

    def get(self, name: str) -> str | None:
        """Return the value of ``name`` in the file, if present."""
        for entry in self.entries():
            if entry.name == name:
                return entry.value
        return None

    def api_keys(self) -> list[Entry]:
        """Return the entries that hold API keys, ``OPENROUTER_API_KEY`` first."""
        keys = [
            Entry(entry.name, check(entry.value, f"{self.path} ({entry.name})"))
            for entry in self.entries()
            if entry.name.startswith(API_KEY) and entry.value
        ]
        keys.sort(key=lambda entry: entry.name != API_KEY)
        return keys

    def set_current(self, secret: str, note: str) -> None:
        """Make ``secret`` the file's ``OPENROUTER_API_KEY``; keep the old one named.

        The previous current key stays in the file under a numbered name, so a key
        that is only spent for today is not lost.
        """
        secret = clean(secret)
        lines = self._lines()
        taken = {entry.name for entry in parse("\n".join(lines))}
        kept = []
        for line in lines:
            entry = _entry(line)
            if entry is not None and entry.name == API_KEY:
                number = 2
                while f"{API_KEY}_{number}" in taken:
                    number += 1
                taken.add(f"{API_KEY}_{number}")
                kept.append(f"{API_KEY}_{number}={entry.value}")
            else:
                kept.append(line)
        kept.append(f"# {note}")
        kept.append(f"{API_KEY}={secret}")
        self.write("\n".join(kept) + "\n")

    def ensure(self) -> None:
        """Create the file empty, mode 0600, if it does not exist yet."""
        if not self.path.exists():
            self.write("")

    def write(self, text: str) -> None:
        """Replace the file's content atomically, with mode 0600."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(temporary, 0o600)
            os.replace(temporary, self.path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold an exclusive lock beside the file: one provisioning at a time."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with exclusive(self.path.with_name(self.path.name + ".lock")):
            yield

    def _lines(self) -> list[str]:
        if not self.path.exists():
            return []
        self._check_mode()
        return self.path.read_text(encoding="utf-8").splitlines()

    def _check_mode(self) -> None:
        mode = self.path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise UsageError(
                f"keys file {self.path} can be read by others (mode "
                f"{stat.S_IMODE(mode):o}); run `chmod 600 {self.path}` and try again"
            )


def parse(text: str) -> Iterator[Entry]:
    """Yield the entries of dotenv text (``NAME=value``, ``export``, quotes)."""
    for line in text.splitlines():
        entry = _entry(line)
        if entry is not None:
            yield entry


def _entry(line: str) -> Entry | None:
    stripped = line.strip()
    if not stripped or stripped.startswith("#") or "=" not in stripped:
        return None
    name, _, value = stripped.partition("=")
    name = name.strip().removeprefix("export ").strip()
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return Entry(name, clean(value))
