"""Specimens: the distinct sheet images under a folder.

A specimen is the SHA-256 of an image file's bytes: the same bytes under two names are
one specimen (the other names are kept as duplicates), and two files with the same
name in different folders are two specimens. The folder is read as a stream, one file
at a time, so a folder of a million sheets costs no more memory than one of ten.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from herbx import images
from herbx.errors import ImageError, UsageError


@dataclass(frozen=True, slots=True)
class Specimen:
    specimen_id: str
    path: str
    size: int
    duplicates: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        """Every recorded file name of the specimen, the first one first."""
        return (self.path, *self.duplicates)


def walk(images_dir: Path) -> Iterator[Specimen]:
    """Yield one Specimen per image file under a folder, in a stable sorted order.

    Files are not merged here: two files with the same bytes come out as two
    Specimens with the same id, and the caller decides what a duplicate means.
    """
    for path, name in images.find_named(images_dir):
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
        yield Specimen(digest, name, size)


def check_folder(images_dir: Path) -> None:
    """Refuse a folder without sheet images, before anything is recorded."""
    if next(images.find(images_dir), None) is None:
        raise UsageError(
            f"no images ({', '.join(images.SUFFIXES)}) under {images_dir}; "
            "give the folder that holds the sheet images"
        )


def count(images_dir: Path) -> int:
    """The number of distinct specimens under a folder (for planning)."""
    check_folder(images_dir)
    # Raw 32-byte digests take half the memory of the hex ids.
    return len({bytes.fromhex(s.specimen_id) for s in walk(images_dir)})


def line(specimen: Specimen) -> bytes:
    """The input digest's line for one file: its name and its content hash."""
    return f"{specimen.path}\t{specimen.specimen_id}\n".encode()
