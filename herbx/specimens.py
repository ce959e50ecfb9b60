"""Specimens: the distinct sheet images under a folder.

A specimen is the SHA-256 of an image file's bytes: the same bytes under two names are
one specimen (the other names are kept as duplicates), and two files with the same
name in different folders are two specimens.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from sys import intern

from herbx import images
from herbx.errors import ImageError, UsageError


@dataclass(frozen=True, slots=True)
class Specimen:
    specimen_id: str
    path: str
    size: int
    duplicates: tuple[str, ...] = ()


def scan(images_dir: Path) -> list[Specimen]:
    """Find the specimens under a folder: one per distinct file content."""
    by_hash: dict[str, Specimen] = {}
    for path in images.find(images_dir):
        name = images.relative_name(path, images_dir)
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            shown = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            raise UsageError(
                f"the file name {shown!r} is not valid UTF-8; rename it"
            ) from None
        try:
            digest = images.file_sha256(path)
            size = path.stat().st_size
        except (ImageError, OSError) as exc:
            raise UsageError(f"cannot read {name}: {exc}") from exc
        known = by_hash.get(digest)
        if known is None:
            by_hash[digest] = Specimen(intern(digest), intern(name), size)
        else:
            by_hash[digest] = Specimen(
                digest, known.path, known.size, (*known.duplicates, name)
            )
    if not by_hash:
        raise UsageError(
            f"no images ({', '.join(images.SUFFIXES)}) under {images_dir}; "
            "give the folder that holds the sheet images"
        )
    return list(by_hash.values())


def input_digest(specimens: list[Specimen]) -> str:
    """Digest of the input list: every relative path and its content hash."""
    digest = hashlib.sha256()
    for specimen in sorted(specimens, key=lambda s: s.path):
        for name in (specimen.path, *specimen.duplicates):
            digest.update(f"{name}\t{specimen.specimen_id}\n".encode())
    return digest.hexdigest()
