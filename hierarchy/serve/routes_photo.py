"""One photo: the page, ``POST /api/predict`` (upload, detect, crop, every head's top 5) and ``GET /files/…``
(a photo the labels file lists, from the folders it names only)."""

from __future__ import annotations

import asyncio
import math
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, UploadFile
from fastapi.responses import FileResponse

from hierarchy.errors import UserError
from hierarchy.serve.predictor import TooLarge, decode_upload
from hierarchy.serve.state import STATIC, State

router = APIRouter()


@router.get("/", include_in_schema=False)
def photo_page() -> FileResponse:
    return FileResponse(STATIC / "index.html")


@router.post("/api/predict")
async def predict(state: State, file: Annotated[UploadFile, File()], box: Annotated[str, Form()] = "") -> dict:
    data = await file.read(state.max_bytes + 1)
    if len(data) > state.max_bytes:
        raise TooLarge(f"the upload is over {state.max_upload_mb:g} MB: send a smaller file")
    image, scale = await asyncio.to_thread(decode_upload, data, state.max_pixels, state.predictor.labeler.max_side)
    width, height = round(image.width * scale), round(image.height * scale)
    regions = await asyncio.wrap_future(state.predictor.submit(image, scale, parse_box(box, width, height)))
    return {"width": width, "height": height, "regions": regions}


@router.get("/files/{root}/{path:path}")
def photo(state: State, root: int, path: str) -> FileResponse:
    file = state.need_table().photo_file(root, path)  # None for `../`, links out and files the table does not list
    if file is None:
        raise HTTPException(404, "no such photo in the labels file")
    return FileResponse(file)


def parse_box(text: str, width: int, height: int) -> tuple[float, float, float, float] | None:
    """``"x1,y1,x2,y2"`` (the photo's pixels) clipped to the photo; "" = no box."""
    if not text.strip():
        return None
    try:
        x1, y1, x2, y2 = (float(v) for v in text.split(","))
    except ValueError:
        raise UserError(f"box={text!r}: give four numbers x1,y1,x2,y2 in the photo's pixels") from None
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        raise UserError(f"box={text!r}: the numbers must be finite")
    x1, x2 = sorted((min(max(x1, 0.0), width), min(max(x2, 0.0), width)))
    y1, y2 = sorted((min(max(y1, 0.0), height), min(max(y2, 0.0), height)))
    if x2 - x1 < 2 or y2 - y1 < 2:
        raise UserError(f"box={text!r} is empty inside the {width}x{height} photo: draw a larger crop")
    return x1, y1, x2, y2
