"""A run of the local engine: each sheet read by OCR here, its draft record saved.

See ``herbx.drafting`` for what is recorded and how a draft is made.
"""

from __future__ import annotations

import uuid
from typing import Any

from herbx import drafting
from herbx import events as ev
from herbx.errors import ImageError
from herbx.extraction import Extraction, Options, Progress
from herbx.ledger import Ledger
from herbx.specimens import Specimen


class LocalExtraction(Extraction):
    """A run whose sheets are read by the local OCR engine, one at a time.

    OCR keeps both cores busy on one sheet, so sheets are read in turn; the ledger,
    resume, raw.jsonl and the run's summary are the model runs' own.
    """

    def __init__(
        self,
        ledger: Ledger,
        options: Options,
        *,
        reader: Any,
        progress: Progress | None = None,
    ):
        super().__init__(ledger, options, None, progress=progress)
        self.reader = reader

    def _start_work(self) -> None:
        pass  # no keys to load

    def _validate(self) -> None:
        pass  # a sheet the rules cannot read says nothing about the next one

    def _process(self, specimen: Specimen, attempt: int) -> None:
        data = self._read(specimen)
        if data is None:
            self._fail(
                specimen,
                "image_missing",
                f"{specimen.path} is no longer in {self.options.images_dir} with the "
                "same content; put it back and resume with --retry-failed",
                attempts=0,
            )
            return
        try:
            reading = self.reader.read(data, specimen.path)
        except ImageError as exc:
            self._fail(specimen, "unreadable_image", str(exc), attempts=0)
            return
        del data

        read = ev.OcrRead(
            specimen_id=specimen.specimen_id,
            attempt=attempt + 1,
            request_id=uuid.uuid4().hex,
            engine=self.reader.info.recorded(),
            image_sha256=specimen.specimen_id,
            width=reading.width,
            height=reading.height,
            exif_orientation=reading.exif_orientation,
            rotation=reading.rotation,
            scale=reading.scale,
            duration_ms=reading.duration_ms,
            lines=reading.lines,
        )
        self._finish([read, drafting.outcome(read, specimen.path)])
