"""Finding specimen images and preparing the exact bytes sent to a model.

A specimen is identified by the SHA-256 of its file: the same bytes under two names are
one specimen. Preparation is deterministic: with the same Pillow, the same file and the
same settings always give the same JPEG bytes, so a request can be reproduced and its
image digest checked.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path

import msgspec
from PIL import Image, ImageOps, UnidentifiedImageError

from herbx.errors import ImageError, UsageError

SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")

# Herbarium scans run to 60-80 megapixels; Pillow's default bomb guard (89 MP with a
# warning, 179 MP refused) would reject legitimate sheets at the high end.
Image.MAX_IMAGE_PIXELS = 400_000_000

DEFAULT_MAX_SIDE = 1600
JPEG_QUALITY = 90


class Prepared(msgspec.Struct, frozen=True):
    """An image ready to send: JPEG bytes plus what the ledger records about them."""

    data: bytes
    width: int
    height: int
    sha256: str

    def data_url(self) -> str:
        """Return the image as a ``data:`` URL for a chat message."""
        return "data:image/jpeg;base64," + base64.b64encode(self.data).decode("ascii")


def find(root: Path) -> Iterator[Path]:
    """Yield image files under ``root``, recursively, in a stable sorted order."""
    for path, _name in find_named(root):
        yield path


def find_named(root: Path) -> Iterator[tuple[Path, str]]:
    """Yield (path, name relative to ``root`` with forward slashes) per image file.

    The name is cut from the walk's own strings: ``Path.relative_to`` took 2 s of a
    100,000-sheet folder's start-up.
    """
    if not root.exists():
        raise UsageError(f"no such directory: {root}; give the folder of sheet images")
    if not root.is_dir():
        raise UsageError(f"{root} is not a directory; give the folder of sheet images")

    def unreadable(error: OSError) -> None:
        raise UsageError(
            f"cannot read the folder {error.filename}: {error.strerror}; fix its "
            "permissions or move it out of the images folder"
        )

    top = os.fspath(root)
    for folder, dirs, files in os.walk(top, onerror=unreadable):
        dirs.sort()
        # os.walk joins below ``top`` with os.path.join: ``folder`` starts with it.
        inside = folder[len(top) :].lstrip(os.sep).replace(os.sep, "/")
        prefix = f"{inside}/" if inside else ""
        for name in sorted(files):
            if name.lower().endswith(SUFFIXES) and not name.startswith("."):
                yield Path(folder, name), prefix + name


def file_sha256(path: Path) -> str:
    """Return the SHA-256 of a file's bytes."""
    try:
        with path.open("rb") as handle:
            # file_digest reads into one reused buffer: no large transient per file.
            return hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError as exc:
        raise ImageError(f"cannot read {path}: {exc.strerror}") from exc


def prepare(
    source: Path | bytes, max_side: int = DEFAULT_MAX_SIDE, name: str = ""
) -> Prepared:
    """Orient, downscale and re-encode an image as deterministic JPEG bytes.

    ``source`` is a file, or a file's bytes already read (``name`` then names it in
    errors).
    """
    if isinstance(source, Path):
        name = name or source.name
    opened = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with Image.open(opened) as image:
            image.load()
            image = ImageOps.exif_transpose(image)
            image = flatten(image)
            if max(image.size) > max_side:
                image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            buffer = io.BytesIO()
            # No EXIF, ICC or progressive encoding: only pixels decide the bytes.
            image.save(
                buffer,
                format="JPEG",
                quality=JPEG_QUALITY,
                optimize=False,
                progressive=False,
                subsampling="4:2:0",
            )
    except Image.DecompressionBombError:
        raise ImageError(
            f"cannot read image {name}: it claims more than "
            f"{Image.MAX_IMAGE_PIXELS:,} pixels, more than any sheet"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ImageError(f"cannot read image {name}: {exc}") from exc

    data = buffer.getvalue()
    return Prepared(
        data=data,
        width=image.width,
        height=image.height,
        sha256=hashlib.sha256(data).hexdigest(),
    )


def flatten(image: Image.Image) -> Image.Image:
    """Return an RGB or greyscale copy; transparency is laid on white paper."""
    if image.mode in ("RGB", "L"):
        return image
    if image.mode in ("RGBA", "LA", "P", "PA"):
        rgba = image.convert("RGBA")
        paper = Image.new("RGB", rgba.size, "white")
        paper.paste(rgba, mask=rgba.getchannel("A"))
        return paper
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        return image.point(lambda value: value / 256).convert("L")
    return image.convert("RGB")
