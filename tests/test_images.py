"""Finding sheets and preparing the exact bytes that are sent."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from herbx import images
from herbx.errors import ImageError, UsageError
from herbx.specimens import check_folder, count, walk

from .conftest import SAMPLES


def save(path: Path, size=(300, 200), colour="white", **options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, **options)
    return path


def test_images_are_found_recursively_in_any_letter_case(tmp_path):
    for name in ("a.jpg", "b.JPEG", "sub/c.png", "sub/deeper/d.TIF", "e.tiff"):
        save(tmp_path / name, format="PNG" if "png" in name else "JPEG")
    (tmp_path / "notes.txt").write_text("not an image")

    found = [name for _path, name in images.find_named(tmp_path)]

    assert found == ["a.jpg", "b.JPEG", "e.tiff", "sub/c.png", "sub/deeper/d.TIF"]


def test_a_missing_or_empty_folder_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no such directory"):
        list(images.find(tmp_path / "nope"))
    with pytest.raises(UsageError, match="no images"):
        check_folder(tmp_path)


def test_identical_bytes_under_two_names_are_one_specimen(tmp_path):
    save(tmp_path / "a.jpg", colour="red")
    (tmp_path / "z").mkdir()
    (tmp_path / "z" / "copy.jpg").write_bytes((tmp_path / "a.jpg").read_bytes())
    save(tmp_path / "b.jpg", colour="blue")

    walked = list(walk(tmp_path))

    assert [s.path for s in walked] == ["a.jpg", "b.jpg", "z/copy.jpg"]
    assert walked[0].specimen_id == walked[2].specimen_id != walked[1].specimen_id
    assert count(tmp_path) == 2


def test_preparation_is_deterministic_and_downscales_to_the_longest_side():
    sheet = sorted(SAMPLES.glob("*.jpg"))[0]

    first = images.prepare(sheet, max_side=800)
    second = images.prepare(sheet, max_side=800)

    assert first.data == second.data and first.sha256 == second.sha256
    assert max(first.width, first.height) == 800
    assert first.data_url().startswith("data:image/jpeg;base64,")


def test_exif_orientation_is_applied_before_sending(tmp_path):
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    save(path, size=(400, 100), format="JPEG", exif=exif)

    prepared = images.prepare(path)

    assert (prepared.width, prepared.height) == (100, 400)
    sent = Image.open(io.BytesIO(prepared.data))
    assert sent.getexif().get(0x0112) is None


def test_transparent_and_sixteen_bit_images_are_prepared(tmp_path):
    Image.new("RGBA", (50, 40), (0, 0, 0, 0)).save(tmp_path / "clear.png")
    Image.new("I;16", (50, 40), 40000).save(tmp_path / "deep.tif")

    clear = images.prepare(tmp_path / "clear.png")
    deep = images.prepare(tmp_path / "deep.tif")

    assert Image.open(io.BytesIO(clear.data)).getpixel((0, 0)) == (255, 255, 255)
    assert (deep.width, deep.height) == (50, 40)


@pytest.mark.parametrize(
    "content",
    [b"", b"definitely not an image", None],
    ids=["empty", "garbage", "truncated"],
)
def test_unreadable_images_raise_an_image_error(tmp_path, content):
    path = tmp_path / "bad.jpg"
    if content is None:
        whole = sorted(SAMPLES.glob("*.jpg"))[0].read_bytes()
        content = whole[: len(whole) // 3]
    path.write_bytes(content)

    with pytest.raises(ImageError, match="bad.jpg"):
        images.prepare(path)
