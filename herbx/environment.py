"""Snapshots of the software environment that produced a run's records.

A snapshot names the code (herbx version and git state), the interpreter, the platform
and every installed distribution, and the command line with secrets redacted. Values of
environment variables are never recorded, only which herbx-related ones were set.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import herbx
from herbx.keys import Redactor

_VARIABLES = (
    "HERBX_LEDGER",
    "HERBX_KEYS_FILE",
    "HERBX_PROVISION_COMMAND",
    "OPENROUTER_API_KEY",
    "OPENROUTER_BASE_URL",
    "OPENROUTER_PROVISIONING_KEY",
)


def snapshot(argv: list[str], redact: Redactor) -> dict[str, Any]:
    """Describe this process's environment as plain JSON-ready data."""
    source = Path(herbx.__file__).resolve().parent.parent
    return {
        "herbx_version": herbx.__version__,
        "git": git_state(source),
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
        },
        "platform": {
            "system": platform.system(),
            "release": platform.release(),
            "machine": platform.machine(),
            "platform": platform.platform(),
        },
        "packages": packages(),
        "argv": [redact(arg) for arg in argv],
        "variables_set": sorted(name for name in _VARIABLES if os.environ.get(name)),
    }


def packages() -> dict[str, str]:
    """Return installed distributions and their versions, sorted by name.

    Only the header of each METADATA file is read: the email parser that
    ``Distribution.metadata`` uses also parses every long description, which made
    this a tenth of the start-up of a run.
    """
    found = {}
    for dist in importlib.metadata.distributions():
        name = version = None
        text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
        for line in text.split("\n\n", 1)[0].splitlines():
            if line.startswith("Name:") and name is None:
                name = line[5:].strip()
            elif line.startswith("Version:") and version is None:
                version = line[8:].strip()
        if name:
            found[name.lower()] = version or dist.version
    return dict(sorted(found.items()))


def git_state(path: Path) -> dict[str, Any] | None:
    """Return commit, branch and dirty flag of the git checkout holding ``path``."""

    def git(*args: str) -> str | None:
        try:
            result = subprocess.run(
                ["git", "-C", str(path), *args],
                capture_output=True,
                text=True,
                timeout=10,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return result.stdout.strip() if result.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "commit": commit,
        "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
        "dirty": bool(status),
    }
