"""Image files: finding them (folders, files, .txt lists), hashing them, opening them upright as RGB, and
decoding them ahead in threads.

Both the data package and detection read photos; this module holds the one way to do it and imports nothing
of ours but the error type.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

from hierarchy.errors import UserError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}
MAX_PIXELS = 120_000_000  # a 10000x10000 photo opens; decompression bombs beyond that are refused undecoded
EXIF_ORIENTATION = 0x0112
ROTATED_ORIENTATIONS = {5, 6, 7, 8}  # EXIF orientations that swap width and height
Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # PIL warns above this; open_image turns the warning into an error


def open_image(path: str, max_side: int = 0) -> tuple[Image.Image, float]:
    """Decode an image file as upright RGB; JPEGs larger than ``max_side`` decode at a reduced scale.

    Orientation from EXIF is applied before anything else, so boxes always refer to the upright image.
    Grey, palette, CMYK and 16-bit images become RGB; transparency is composited on white.

    Returns:
        (image, scale): ``scale`` multiplies the returned image's coordinates into the full-size upright image.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        image = Image.open(path)
        full_w, full_h = image.size
        if image.getexif().get(EXIF_ORIENTATION) in ROTATED_ORIENTATIONS:
            full_w, full_h = full_h, full_w
        if max_side and image.format == "JPEG" and max(image.size) > max_side:
            # DCT scaling: a 10000 px JPEG decodes 8x smaller, fast. PIL keeps both sides at least the size
            # asked for, so ask for the photo's own aspect: a 1920x1080 frame for 640 decodes at 960x540
            shrink = max_side / max(image.size)
            image.draft("RGB", (math.ceil(image.width * shrink), math.ceil(image.height * shrink)))
        image.load()
    upright = to_rgb(ImageOps.exif_transpose(image))
    return upright, full_w / upright.width


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode → RGB; transparent pixels become white (product shots on clear backgrounds)."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit grey: scale to 8 bits before converting
        image = image.point(lambda v: v / 256).convert("L")
    return image.convert("RGB")


def file_hash(path: str) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks (photos may be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def list_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursively), sorted, by suffix."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


@dataclass(frozen=True)
class Item:
    root: str  # the folder or list file it was found under, as given ("" for a file given directly)
    path: str  # relative to root
    file: str  # the file to open


def collect(paths: list[str]) -> list[Item]:
    """Folders (recursively), image files, and list files (.txt: one path per line, relative to the list)."""
    items = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            items += [Item(raw, str(p.relative_to(path)), str(p)) for p in list_images(path)]
        elif path.is_file() and path.suffix.lower() == ".txt":
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip() and not line.startswith("#"):
                    file = Path(line.strip()).expanduser()
                    file = file if file.is_absolute() else path.parent / file
                    items.append(Item(raw, line.strip(), str(file)))
        elif path.is_file():
            items.append(Item("", raw, str(path)))
        else:
            raise UserError(f"{raw} is neither a file nor a folder")
    if not items:
        raise UserError(f"no images under {paths} (suffixes: {sorted(IMAGE_SUFFIXES)}; or a .txt list of paths)")
    return items


def decode_photo(item: Item, max_side: int) -> tuple[Item, Image.Image | None, float, str]:
    """``(item, image, scale, sha256)`` with the image decoded (long side down to ``max_side``) and the file
    hashed; a file that cannot be read gives ``(item, None, 0.0, reason)``."""
    try:
        sha = file_hash(item.file)
        image, scale = open_image(item.file, max_side)
        return item, image, scale, sha
    except Exception as exc:  # missing, zero-byte, corrupt, not an image, a decompression bomb
        return item, None, 0.0, f"{type(exc).__name__}: {exc}"


def decoded_batches(items: list[Item], max_side: int, batch: int, threads: int) -> Iterator[list[tuple]]:
    """``decode_photo`` results in batches, in order, decoded by ``threads`` threads up to two batches ahead
    (0: in the caller's thread). PIL and hashlib let go of the GIL while they work, so threads decode side by
    side with the network, and the decoded pixels need no copy between processes."""
    batches = [items[s : s + batch] for s in range(0, len(items), batch)]
    if threads <= 0:
        yield from ([decode_photo(item, max_side) for item in part] for part in batches)
        return
    with ThreadPoolExecutor(threads, thread_name_prefix="decode") as pool:
        ahead: deque[list[Future]] = deque()
        for part in batches:
            ahead.append([pool.submit(decode_photo, item, max_side) for item in part])
            if len(ahead) > 2:
                yield [f.result() for f in ahead.popleft()]
        while ahead:
            yield [f.result() for f in ahead.popleft()]
