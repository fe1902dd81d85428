"""Safe poster opening (modes, corrupt input, bombs, path escapes) and CNN preprocessing."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genrelens.data.images import open_poster, preprocess
from genrelens.errors import PosterError

POSTERS = Path(__file__).resolve().parents[2] / "shared" / "data" / "movies" / "posters"


def _real_poster() -> Path:
    if not POSTERS.is_dir():
        pytest.skip("default data not found")
    return sorted(POSTERS.glob("*.jpg"))[0]


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width x height (8-bit RGB); decoding it would be enormous."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def _save(image: Image.Image, path: Path, **kw) -> Path:
    image.save(path, **kw)
    return path


def test_modes_convert_to_rgb(tmp_path: Path) -> None:
    red = (200, 30, 40)
    cases = {
        "rgb.png": Image.new("RGB", (20, 10), red),
        "cmyk.jpg": Image.new("RGB", (20, 10), red).convert("CMYK"),
        "gray.png": Image.new("L", (20, 10), 90),
        "palette.png": Image.new("RGB", (20, 10), red).quantize(8),
        "rgba.png": Image.new("RGBA", (20, 10), (*red, 255)),
        "gray16.png": Image.new("I;16", (20, 10), 90 * 257),
    }
    for name, image in cases.items():
        out = open_poster(_save(image, tmp_path / name))
        assert out.mode == "RGB" and out.size == (20, 10), name
        got = np.asarray(out)[5, 10]
        want = (90, 90, 90) if "gray" in name else red
        assert np.abs(got.astype(int) - want).max() <= 6, (name, got)


def test_alpha_is_composited_on_white(tmp_path: Path) -> None:
    clear = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    assert np.asarray(open_poster(_save(clear, tmp_path / "a.png"))).min() == 255
    half = Image.new("LA", (8, 8), (0, 128))
    assert abs(int(np.asarray(open_poster(_save(half, tmp_path / "la.png")))[0, 0, 0]) - 127) <= 2
    pa = Image.new("P", (8, 8), 0)
    pa.putpalette([10, 20, 30] * 256)
    pa.info["transparency"] = 0  # palette index 0 fully transparent
    assert np.asarray(open_poster(_save(pa, tmp_path / "pt.png"))).min() == 255
    assert open_poster(Image.new("PA", (4, 4))).mode == "RGB"


def test_animated_gif_uses_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    r, g, b = np.asarray(open_poster(path))[8, 8]
    assert r > 200 and b < 50


def test_exif_rotation_applied(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    path = _save(Image.new("RGB", (40, 20), (9, 9, 9)), tmp_path / "rot.jpg", exif=exif)
    assert open_poster(path).size == (20, 40)


def test_bytes_and_pil_sources(tmp_path: Path) -> None:
    path = _save(Image.new("RGB", (30, 40), (1, 2, 3)), tmp_path / "x.jpg", quality=95)
    from_path, from_bytes = open_poster(path), open_poster(path.read_bytes())
    assert np.array_equal(np.asarray(from_path), np.asarray(from_bytes))
    assert open_poster(Image.open(path)).size == (30, 40)


@pytest.mark.parametrize("case", ["missing", "empty", "text", "truncated", "garbage", "too_big"])
def test_bad_files_raise_poster_error(tmp_path: Path, case: str) -> None:
    path = tmp_path / "poster.jpg"
    kw = {}
    if case == "empty":
        path.write_bytes(b"")
    elif case == "text":
        path.write_text("this is not an image\n")
    elif case == "truncated":
        data = _real_poster().read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif case == "garbage":
        path.write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8)  # JPEG magic, then junk
    elif case == "too_big":
        path.write_bytes(_real_poster().read_bytes())
        kw = {"max_bytes": 100}
    with pytest.raises(PosterError):
        open_poster(path, **kw)
    if path.exists():
        with pytest.raises(PosterError):
            open_poster(path.read_bytes(), **kw)


def test_empty_upload_refused() -> None:
    with pytest.raises(PosterError, match="empty"):
        open_poster(b"")


def test_image_bomb_refused_before_decoding(tmp_path: Path) -> None:
    huge = tmp_path / "bomb.png"
    huge.write_bytes(_png_declaring(100_000, 100_000))  # beyond Pillow's own limit too
    with pytest.raises(PosterError):
        open_poster(huge)
    with pytest.raises(PosterError, match="declares 3000x3000"):  # under Pillow's limit, over ours
        open_poster(_png_declaring(3000, 3000), max_pixels=1_000_000)
    with pytest.raises(PosterError):
        open_poster(Image.new("L", (2000, 1000)), max_pixels=1_000_000)


def test_path_escape_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "posters").mkdir(parents=True)
    inside = _save(Image.new("RGB", (8, 8)), root / "posters" / "ok.jpg")
    outside = _save(Image.new("RGB", (8, 8)), tmp_path / "secret.jpg")
    assert open_poster("posters/ok.jpg", root=root).size == (8, 8)
    assert open_poster(inside, root=root).size == (8, 8)  # absolute but inside
    (root / "posters" / "alias.jpg").symlink_to(inside)
    assert open_poster("posters/alias.jpg", root=root).size == (8, 8)  # link staying inside
    (root / "posters" / "evil.jpg").symlink_to(outside)
    for bad in ["../secret.jpg", "posters/../../secret.jpg", str(outside), "/etc/passwd", "posters/evil.jpg"]:
        with pytest.raises(PosterError, match="outside"):
            open_poster(bad, root=root)


def test_draft_decodes_large_jpeg_smaller(tmp_path: Path) -> None:
    big = Image.fromarray(np.random.default_rng(0).integers(0, 255, (1600, 1200, 3), dtype=np.uint8))
    path = _save(big, tmp_path / "big.jpg", quality=80)
    small = open_poster(path, draft_size=256)
    assert small.mode == "RGB" and 256 <= min(small.size) < 1200
    assert open_poster(path).size == (1200, 1600)


def test_preprocess_shape_and_values() -> None:
    images = [Image.new("RGB", (185, 278), (255, 255, 255)), Image.new("RGB", (600, 300), (0, 0, 0)),
              Image.new("L", (224, 224), 127)]
    x = preprocess(images, size=224)
    assert x.shape == (3, 3, 224, 224) and x.dtype == np.float32
    assert np.allclose(x[0], 1.0) and np.allclose(x[1], -127 / 128) and np.allclose(x[2], 0.0)
    assert preprocess([], size=240).shape == (0, 3, 240, 240)


def test_preprocess_center_crops() -> None:
    arr = np.zeros((256, 512, 3), dtype=np.uint8)
    arr[:, 128:384] = 255  # white middle half of a wide image
    x = preprocess([Image.fromarray(arr)], size=224)[0]
    assert x.min() == pytest.approx(1.0, abs=0.01)  # the 224 crop lies inside the white band


def test_real_poster_preprocess() -> None:
    x = preprocess([open_poster(_real_poster(), draft_size=256)])
    assert x.shape == (1, 3, 224, 224) and -1.0 <= x.min() < x.max() <= 1.0 and x.std() > 0.05
