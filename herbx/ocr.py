"""Reading the text of a sheet on this machine, with the OCR models of a PyPI wheel.

The local engine uses RapidOCR (PP-OCR models exported to ONNX, run by onnxruntime).
Its wheel carries its default models; RapidOCR would download any other model, so
herbx names the wheel's own files and replaces RapidOCR's downloader with one that
refuses: nothing here can reach the network.

A reading is kept whole in the ledger (every line's text, confidence and box in the
upright sheet's pixels), so label rules of a later version can be replayed over it
without reading the image again.

Sheets are photographed in any orientation and labels are often typed sideways, so a
reading first turns the image upright by its EXIF tag, then finds the direction most
of its text runs in and turns it so that text reads left to right.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import msgspec
from PIL import Image, ImageOps, UnidentifiedImageError

from herbx.errors import ImageError, UsageError
from herbx.events import OcrLine as Line

ENGINE = "rapidocr"
INSTALL_HINT = "pip install 'herbx[offline]'"

# The wheel's own model files (rapidocr 3.10); the rec model carries its dictionary.
MODEL_FILES = {
    "det": "PP-OCRv6_det_small.onnx",
    "rec": "PP-OCRv6_rec_small.onnx",
    "cls": "ch_ppocr_mobile_v2.0_cls_mobile.onnx",
}

# Label text on a 1600 px photograph of a sheet is 10-15 px high, below what the
# detector finds reliably: sheets are read at about twice that, never above
# READ_SIDE on their long side (a 7000 px scan is read scaled down).
READ_SIDE = 3200
MAX_UPSCALE = 2.0
# Lines the recogniser is less sure of than this are dropped. RapidOCR's default of
# 0.5 drops whole label lines whose dotted leaders confuse it; the rules weigh what
# is kept by its confidence instead.
TEXT_SCORE = 0.3
# Finding the orientation needs only the detector at the sheet's own size, and the
# recogniser on a few of the longest lines turned both ways.
PROBE_SIDE = 1600
PROBE_LINES = 8

SETTINGS = {
    "read_side": READ_SIDE,
    "max_upscale": MAX_UPSCALE,
    "text_score": TEXT_SCORE,
    "probe_side": PROBE_SIDE,
    "probe_lines": PROBE_LINES,
}


class Reading(msgspec.Struct, frozen=True, kw_only=True):
    """Everything one OCR pass saw on a sheet, in the upright sheet's frame."""

    lines: list[Line]
    width: int  # of the upright sheet
    height: int
    exif_orientation: int  # the EXIF tag applied first (1 = none)
    rotation: int  # degrees counter-clockwise applied after EXIF: 0, 90, 180, 270
    scale: float  # how much the sheet was enlarged (or reduced) to be read
    duration_ms: int


class OcrUnavailable(UsageError):
    """The offline extra is not installed."""


@dataclass(frozen=True)
class EngineInfo:
    """What produced a reading, for the ledger."""

    name: str
    version: str
    runtime: str
    models: dict[str, str]  # role -> "file sha256-prefix"
    settings: dict[str, Any]

    def recorded(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "runtime": self.runtime,
            "models": self.models,
            "settings": self.settings,
        }


class Reader:
    """A loaded OCR engine; ``read`` is safe to call from one thread at a time."""

    def __init__(self, threads: int | None = None):
        rapidocr = _import()
        folder = Path(rapidocr.__file__).parent / "models"
        paths = {role: folder / name for role, name in MODEL_FILES.items()}
        missing = [str(path) for path in paths.values() if not path.is_file()]
        if missing:
            raise OcrUnavailable(
                f"the OCR models are not where this herbx expects them ({missing[0]}); "
                f"install the versions herbx pins with {INSTALL_HINT}"
            )
        _refuse_downloads()

        threads = threads or os.cpu_count() or 1
        params = {
            "Global.log_level": "error",
            "Global.text_score": TEXT_SCORE,
            "Global.max_side_len": READ_SIDE + 64,
            # The detector would scale a thin image's short side up to 736 px; the
            # sheet is already at the size it should be read at.
            "Det.limit_type": "max",
            "Det.limit_side_len": READ_SIDE + 64,
            "EngineConfig.onnxruntime.intra_op_num_threads": threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        }
        for role, path in paths.items():
            key = role.capitalize()
            params[f"{key}.engine_type"] = rapidocr.EngineType.ONNXRUNTIME
            params[f"{key}.model_path"] = str(path)
        self._engine = rapidocr.RapidOCR(params=params)
        self._lock = threading.Lock()
        self.info = EngineInfo(
            name=ENGINE,
            version=_version("rapidocr"),
            runtime=f"onnxruntime {_version('onnxruntime')}",
            models={role: _describe(path) for role, path in paths.items()},
            settings=dict(SETTINGS),
        )

    def read(self, data: bytes, name: str = "image") -> Reading:
        """Read every line of text on a sheet image given as file bytes."""
        started = time.perf_counter()
        image, exif = _upright(data, name)
        with self._lock:
            rotation = self._orientation(image)
            if rotation:
                image = image.rotate(rotation, expand=True)
            scale = min(MAX_UPSCALE, READ_SIDE / max(image.size))
            lines = self._lines(image, scale)
        return Reading(
            lines=lines,
            width=image.width,
            height=image.height,
            exif_orientation=exif,
            rotation=rotation,
            scale=round(scale, 4),
            duration_ms=round((time.perf_counter() - started) * 1000),
        )

    def _run(self, image: Image.Image, det: bool, cls: bool, rec: bool) -> Any:
        """RapidOCR over an image; it keeps the steps of the previous call, so all
        three are named every time."""
        import numpy as np

        return self._engine(
            np.asarray(image)[:, :, ::-1], use_det=det, use_cls=cls, use_rec=rec
        )

    def _lines(self, image: Image.Image, scale: float) -> list[Line]:
        readable = _scaled(image, scale, Image.Resampling.LANCZOS)
        found = self._run(readable, det=True, cls=True, rec=True)
        if found.boxes is None:
            return []

        lines = []
        for box, text, score in zip(found.boxes, found.txts, found.scores, strict=True):
            lines.append(
                Line(
                    text=text.strip(),
                    score=round(float(score), 4),
                    box=tuple(round(v / scale) for v in _bounds(box)),
                )
            )
        # Top to bottom, then left to right: a stable order for the rules and diffs.
        lines.sort(key=lambda line: (line.box[1], line.box[0]))
        return [line for line in lines if line.text]

    def _orientation(self, image: Image.Image) -> int:
        """Degrees counter-clockwise that make most of the sheet's text read across.

        The detector's boxes tell whether text runs across or up and down (tall
        boxes); which of the two ways is read from the recogniser's confidence on
        the longest lines turned each way.
        """
        scale = min(1.0, PROBE_SIDE / max(image.size))
        probe = _scaled(image, scale, Image.Resampling.BILINEAR)
        found = self._run(probe, det=True, cls=False, rec=False)
        if found.boxes is None:
            return 0

        across: list[tuple[float, tuple[float, ...]]] = []
        upright: list[tuple[float, tuple[float, ...]]] = []
        for box in found.boxes:
            bounds = _bounds(box)
            width, height = bounds[2] - bounds[0], bounds[3] - bounds[1]
            if min(width, height) < 4:
                continue  # a speck, nothing the recogniser could read
            if width >= 2 * height:
                across.append((width, bounds))
            elif height >= 2 * width:
                upright.append((height, bounds))
        sideways = sum(length for length, _ in upright) > sum(
            length for length, _ in across
        )
        chosen = upright if sideways else across
        chosen.sort(key=lambda item: -item[0])
        crops = [
            probe.crop(tuple(round(v) for v in b)) for _, b in chosen[:PROBE_LINES]
        ]
        if not crops:
            return 0
        turns = (90, 270) if sideways else (0, 180)
        scores = [self._recognition_score(crops, turn) for turn in turns]
        return turns[0] if scores[0] >= scores[1] else turns[1]

    def _recognition_score(self, crops: list[Image.Image], turn: int) -> float:
        total = 0.0
        for crop in crops:
            turned = crop.rotate(turn, expand=True) if turn else crop
            found = self._run(turned, det=False, cls=False, rec=True)
            total += float(found.scores[0]) if found.scores else 0.0
        return total


def _scaled(image: Image.Image, scale: float, resample: Any) -> Image.Image:
    if scale == 1:
        return image
    size = (round(image.width * scale), round(image.height * scale))
    return image.resize(size, resample)


def _bounds(points: Any) -> tuple[float, float, float, float]:
    """[left, top, right, bottom] of a detector's four-point box."""
    xs = [point[0] for point in points]
    ys = [point[1] for point in points]
    return min(xs), min(ys), max(xs), max(ys)


def _upright(data: bytes, name: str) -> tuple[Image.Image, int]:
    """The sheet as RGB, turned by its EXIF tag; transparency laid on white."""
    from herbx.images import flatten

    if not data:
        raise ImageError(f"{name} is empty (0 bytes)")
    try:
        with Image.open(io.BytesIO(data)) as opened:
            exif = int(opened.getexif().get(0x0112, 1) or 1)
            image = flatten(ImageOps.exif_transpose(opened)).convert("RGB")
    except Image.DecompressionBombError:
        raise ImageError(
            f"{name} claims more than {Image.MAX_IMAGE_PIXELS:,} pixels, more than "
            "any sheet"
        ) from None
    except UnidentifiedImageError:
        raise ImageError(f"{name} is not an image format herbx can read") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(f"{name} cannot be decoded: {exc}") from None
    _check_shape(image, name)
    return image, exif


# A sheet, a label or a packet is never longer than this many times its width; a
# strip beyond it would make the detector allocate gigabytes for nothing.
MAX_ASPECT = 12
MIN_SIDE = 32


def _check_shape(image: Image.Image, name: str) -> None:
    short, long = sorted(image.size)
    if short < MIN_SIDE or long > MAX_ASPECT * short:
        raise ImageError(
            f"{name} is {image.width}x{image.height} px, not the shape of a sheet "
            f"(at least {MIN_SIDE} px across and at most {MAX_ASPECT} times as long "
            "as wide)"
        )


def _import() -> Any:
    # onnxruntime 1.29 and later send usage telemetry from Linux too, unless this is
    # set before it starts; herbx promises a run that touches no network.
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"
    try:
        import rapidocr
    except ImportError:
        raise OcrUnavailable(
            f"the local engine needs RapidOCR, which is not installed; install it "
            f"with {INSTALL_HINT}, or give an API key to use a model instead"
        ) from None
    return rapidocr


def _refuse_downloads() -> None:
    """Make RapidOCR's downloader fail instead of fetching a model or dictionary.

    With the wheel's own files named above nothing is downloaded; this keeps it so if
    a later RapidOCR would look elsewhere.
    """
    from rapidocr.utils import download_file

    def refuse(params: Any) -> None:
        raise OcrUnavailable(
            f"RapidOCR wanted to download {params.file_url}; herbx runs offline: "
            f"install the versions herbx pins with {INSTALL_HINT}"
        )

    download_file.DownloadFile.run = staticmethod(refuse)


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


@cache
def _describe(path: Path) -> str:
    with path.open("rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    return f"{path.name} sha256:{digest[:16]}"
