"""The specimens the fake recognises: image fingerprints and recorded answers.

A request image is identified by its exact sha256, or else as a resized or re-encoded
copy of a specimen through a 16x16 grey fingerprint. A recognised specimen is answered
with its recorded model output; any other image with a synthetic answer marked as fake.
"""

import dataclasses
import hashlib
import io
import json
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

from herbx.fakeserver.pricing import text_tokens

# Mean absolute grey-level difference of 16x16 thumbnails: resized or re-encoded copies
# of a sheet stay under 2, distinct sheets of the sample set are 10 or more apart.
FINGERPRINT_SIDE = 16
MATCH_THRESHOLD = 5.0


SYNTHETIC_PROVIDER = "herbx fake server (synthetic answer)"


@dataclasses.dataclass
class Answer:
    """The model output for one completion, before any fault alters it."""

    content: str | None
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str = "stop"
    # Set for answers the fake made up, so that no one mistakes them for a model's.
    provider: str | None = None


def fingerprint(image: Image.Image) -> bytes:
    """Return a 16x16 grey thumbnail that survives resizing and re-encoding."""
    side = (FINGERPRINT_SIDE, FINGERPRINT_SIDE)
    return image.convert("L").resize(side, Image.Resampling.BOX).tobytes()


def _distance(a: bytes, b: bytes) -> float:
    return sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)


class Catalogue:
    """The specimen images and recorded answers the fake recognises."""

    def __init__(self, recorded: Path | None, specimens: Path | None) -> None:
        self.fingerprints: dict[str, list[bytes]] = {}
        self.recordings: dict[str, dict[str, Any]] = {}
        for path in sorted(specimens.iterdir()) if specimens else []:
            if path.suffix.lower() in (".jpg", ".jpeg", ".png", ".tif", ".tiff"):
                self._add_specimen(path)
        for line in recorded.read_text().splitlines() if recorded else []:
            row = json.loads(line) if line.strip() else {}
            if row and row.get("status_code", 200) == 200:
                self.recordings[row["sha256"]] = row["response"]

    def _add_specimen(self, path: Path) -> None:
        data = path.read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            # A draft decode at 1/8 scale keeps the startup of 20 sheets well under 1 s.
            image.draft("L", (FINGERPRINT_SIDE * 8, FINGERPRINT_SIDE * 8))
            # Most sample sheets carry an EXIF rotation; a client may send them upright
            # or as stored, so either view identifies the original.
            views = [fingerprint(image), fingerprint(ImageOps.exif_transpose(image))]
        self.fingerprints[hashlib.sha256(data).hexdigest()] = views

    def identify(self, data: bytes, image: Image.Image) -> str | None:
        """Return the sha256 of the original this image was made from, if any."""
        exact = hashlib.sha256(data).hexdigest()
        if exact in self.fingerprints or exact in self.recordings:
            return exact
        probe = fingerprint(ImageOps.exif_transpose(image))
        distances = {
            sha: min(_distance(probe, view) for view in views)
            for sha, views in self.fingerprints.items()
        }
        best = min(distances, key=distances.__getitem__, default=None)
        return best if best and distances[best] <= MATCH_THRESHOLD else None

    def answer(self, specimen: str | None, prompt_tokens: int) -> Answer:
        """Return the recorded answer for a specimen, or a synthetic one."""
        response = self.recordings.get(specimen or "")
        if response is not None:
            content = response["choices"][0]["message"]["content"]
            usage = response["usage"]
            return Answer(content, usage["prompt_tokens"], usage["completion_tokens"])
        remark = f"fake server: no recording for {specimen or 'unknown image'}"
        record = {
            "catalogNumber": {"value": "", "confidence": 0.0},
            "scientificName": {"value": "Synthetic fake answer", "confidence": 0.1},
            "occurrenceRemarks": {"value": remark, "confidence": 0.0},
        }
        content = json.dumps(record, indent=2)
        return Answer(
            content, prompt_tokens, text_tokens(content), provider=SYNTHETIC_PROVIDER
        )
