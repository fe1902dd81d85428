"""Safe poster opening and CNN preprocessing.

`open_poster` turns a path, raw bytes or a PIL image into an RGB image, refusing anything unsafe
(missing, empty, oversized, corrupt, image bombs, paths escaping a data root) with a `PosterError`.
`preprocess` turns RGB images into the float32 NCHW batch the EfficientNet-Lite weights expect.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from genrelens.errors import PosterError

PosterSource = str | Path | bytes | bytearray | memoryview | Image.Image

_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
_WIDE_GRAY_MODES = {"I", "I;16", "I;16L", "I;16B", "I;16N", "F"}


URL_PREFIXES = ("http://", "https://")


TABLE_URL_ADVICE = ("download the images and put their file paths in the poster column (relative to the table's "
                    "folder, or to the folder given with --posters DIR)")


def is_url(value: object) -> bool:
    """Whether ``value`` is a web address (``http://`` or ``https://``), which genrelens never fetches."""
    return isinstance(value, str) and value.strip().lower().startswith(URL_PREFIXES)


def url_message(url: str, advice: str = TABLE_URL_ADVICE) -> str:
    """Why a poster URL is not read, and what to do instead (``advice``: by default, for a table's poster column)."""
    return f"poster is a URL ({url[:80]!r}), which genrelens does not fetch: {advice}"


def resolve_poster_path(src: str | Path, root: Path | None) -> Path:
    """Resolve `src` (relative to `root` when given) and refuse paths that leave `root`, and web addresses."""
    if is_url(src):
        raise PosterError(url_message(str(src).strip()))
    path = Path(src)
    if root is None:
        return path.resolve()
    root = Path(root).resolve()
    resolved = (root / path).resolve()  # an absolute `path` replaces root here, then gets checked
    if not resolved.is_relative_to(root):
        raise PosterError(f"poster path {str(src)!r} is outside the data folder {str(root)!r}")
    return resolved


def _read_bytes(src: str | Path, root: Path | None, max_bytes: int) -> bytes:
    path = resolve_poster_path(src, root)
    if not path.is_file():
        raise PosterError(f"poster file not found: {str(src)!r}")
    size = path.stat().st_size
    if size == 0:
        raise PosterError(f"poster file is empty (0 bytes): {str(src)!r}")
    if size > max_bytes:
        raise PosterError(f"poster file is too large ({size:,} bytes > {max_bytes:,}): {str(src)!r}")
    try:
        return path.read_bytes()
    except OSError as e:
        raise PosterError(f"poster file cannot be read: {str(src)!r} ({e})") from e


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB: alpha is composited on white, 16/32-bit gray is scaled to 8-bit."""
    if image.mode == "RGB":
        return image
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif image.mode in _WIDE_GRAY_MODES:  # 16-bit (or 32-bit int) gray: 0..65535 -> 0..255
        arr = np.asarray(image, dtype=np.float64)
        if image.mode != "F":
            arr = arr / 257.0
        image = Image.fromarray(np.clip(arr, 0, 255).round().astype(np.uint8))
    if image.mode in _ALPHA_MODES:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _decode(data: bytes, max_pixels: int, draft_size: int | None, what: str) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise PosterError(f"poster {what} declares {width}x{height} pixels (> {max_pixels:,})")
            if draft_size and image.format == "JPEG":
                image.draft("RGB", (draft_size, draft_size))
            image.load()  # full decode: truncated or corrupt data fails here, not later
            with contextlib.suppress(Exception):  # phone photos carry their rotation in EXIF; bad EXIF is ignored
                image = ImageOps.exif_transpose(image)
    except PosterError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise PosterError(f"poster {what} is too large to decode safely: {e}") from e
    except UnidentifiedImageError as e:
        raise PosterError(f"poster {what} is not an image") from e
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as e:
        raise PosterError(f"poster {what} is corrupt or truncated: {e}") from e
    return image


def open_poster(
    src: PosterSource,
    root: Path | None = None,
    max_pixels: int = 40_000_000,
    max_bytes: int = 20_000_000,
    draft_size: int | None = None,
) -> Image.Image:
    """Open a poster safely and return it as a fully decoded RGB image.

    src: a path (relative to `root` when given), raw encoded bytes, or a PIL image.
    root: when given, paths that resolve (symlinks included) outside it are refused.
    draft_size: for JPEGs, let the decoder downscale by 1/2, 1/4 or 1/8 while keeping both sides
        >= draft_size (fast); pass the short side the image will be resized to.
    Raises PosterError for missing, empty, oversized, non-image, corrupt or bomb-like input.
    """
    if isinstance(src, Image.Image):
        width, height = src.size
        if width * height > max_pixels:
            raise PosterError(f"poster image has {width}x{height} pixels (> {max_pixels:,}): refused")
        try:
            src.load()
            return to_rgb(src)
        except (OSError, ValueError) as e:
            raise PosterError(f"poster image cannot be decoded: {e}") from e
    if isinstance(src, bytes | bytearray | memoryview):
        data, what = bytes(src), "upload"
        if not data:
            raise PosterError("poster upload is empty (0 bytes)")
        if len(data) > max_bytes:
            raise PosterError(f"poster upload is too large ({len(data):,} bytes > {max_bytes:,})")
    elif isinstance(src, str | Path):
        data, what = _read_bytes(src, root, max_bytes), repr(str(src))
    else:
        raise PosterError(f"cannot open a poster from {type(src).__name__}")
    return to_rgb(_decode(data, max_pixels, draft_size, what))


def resize_size(size: int) -> int:
    """Short side before the center crop: 256 for a 224 crop (the ImageNet convention)."""
    return round(size * 256 / 224)


MAX_ASPECT = 3.0  # posters are ~1.5; a 1x30000 strip would otherwise be resized to 256x7.7M pixels


def _limit_aspect(image: Image.Image, max_aspect: float = MAX_ASPECT) -> Image.Image:
    """Center-crop the long side to ``max_aspect`` x the short side (only the center is kept anyway), so an
    extreme aspect ratio cannot blow up the resize below. Images within the ratio are returned as they are."""
    width, height = image.size
    short, long = min(width, height), max(width, height)
    if long <= max_aspect * short:
        return image
    keep = max(1, round(max_aspect * short))
    if width > height:
        left = (width - keep) // 2
        return image.crop((left, 0, left + keep, height))
    top = (height - keep) // 2
    return image.crop((0, top, width, top + keep))


def preprocess(images: Sequence[Image.Image], size: int = 224) -> np.ndarray:
    """RGB images -> float32 [n, 3, size, size]: resize short side, center crop, (x - 127) / 128."""
    out = np.empty((len(images), 3, size, size), dtype=np.float32)
    short = resize_size(size)
    for i, image in enumerate(images):
        image = _limit_aspect(to_rgb(image))
        width, height = image.size
        scale = short / min(width, height)
        new = (max(size, round(width * scale)), max(size, round(height * scale)))
        if new != image.size:
            image = image.resize(new, Image.Resampling.BILINEAR, reducing_gap=3.0)
        left, top = (new[0] - size) // 2, (new[1] - size) // 2
        crop = np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.float32)
        out[i] = ((crop - 127.0) / 128.0).transpose(2, 0, 1)
    return out
