"""Image tokens per sheet by `--max-side`, by the providers' published rules.

.venv/bin/python benchmarks/image_tokens.py
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from herbx.images import prepare

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "specimens"


def openai_tiles(width: int, height: int) -> int:
    """Tiles of 512 px after fitting 2048 px and scaling the short side to 768 px."""
    scale = min(1.0, 2048 / max(width, height))
    width, height = width * scale, height * scale
    scale = min(1.0, 768 / min(width, height))
    width, height = width * scale, height * scale
    return math.ceil(width / 512) * math.ceil(height / 512)


def main() -> None:
    sheets = sorted(SAMPLES.glob("*.jpg"))
    print("max_side  size        jpeg_kb  tiles  4o-mini  4o     qwen-vl")
    for side in (768, 1024, 1280, 1600, 2048):
        prepared = [prepare(sheet, side) for sheet in sheets]
        kb = statistics.median(len(p.data) for p in prepared) / 1024
        width, height = prepared[0].width, prepared[0].height
        tiles = openai_tiles(width, height)
        qwen = math.ceil(width / 28) * math.ceil(height / 28)
        print(
            f"{side:<9} {width}x{height:<7} {kb:7.0f}  {tiles:5}  "
            f"{2833 + 5667 * tiles:7}  {85 + 170 * tiles:5}  {qwen:7}"
        )


if __name__ == "__main__":
    main()
