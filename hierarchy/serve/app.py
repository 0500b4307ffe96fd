"""``hierarchy serve``: the web app — one photo (detect, crop, top-5 per head) and the review of a labels file
(filter, sort, correct with the keyboard, export the corrections as a training manifest).

The pages are static files (``static/``); they talk to the JSON API below with ``fetch``. Routes:

- ``GET /``, ``GET /review``: the two pages; ``GET /healthz``: liveness, what is loaded.
- ``GET /api/info``: heads, class names, fine → coarse parents, the loaded labels file.
- ``POST /api/predict`` (multipart ``file``, optional ``box=x1,y1,x2,y2`` in the photo's pixels): regions with
  every head's top 5.
- ``GET /api/rows?head=&label=&min_prob=&max_prob=&status=all|todo|done&sort=prob_asc|prob_desc|path&offset=&limit=``:
  one page of the review grid.
- ``POST /api/corrections`` (JSON ``{"row", "head", "action": "set"|"accept", "label"}``): stored, then the row.
- ``GET /api/export``: the corrections as a CSV manifest for ``data.format=csv``.
- ``GET /thumb/{row}``: a crop's thumbnail; ``GET /files/{root}/{path}``: a photo the labels file lists.

Every error a user can cause answers ``{"detail": "what went wrong and what to do"}`` with a 4xx status.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import io
import logging
import math
import secrets
from importlib import resources
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from hierarchy.config import DetectConfig
from hierarchy.errors import UserError
from hierarchy.labeling import Labeler
from hierarchy.onnx_model import load_classifiers
from hierarchy.runner import configure_threads, select_device
from hierarchy.serve.corrections import CorrectionStore, export_manifest
from hierarchy.serve.predictor import Predictor, TooLarge, decode_upload
from hierarchy.serve.review import ReviewTable

log = logging.getLogger(__name__)
STATIC = Path(str(resources.files("hierarchy.serve") / "static"))
TOKEN_COOKIE = "hierarchy_token"
PROTECTED = ("/api/", "/files/", "/thumb/", "/review")  # what --token guards ("/" too, see check_token)
PAGE_LIMIT = 500  # rows per page at most


class CorrectionIn(BaseModel):
    row: int
    head: str
    action: str = "set"
    label: str = ""


def build_app(
    models: list[str], labels: str | None = None, db: str | None = None, token: str = "", device: str = "auto",
    max_upload_mb: float = 20.0, max_pixels: int = 50_000_000, crop: str = "", detect: DetectConfig | None = None,
) -> FastAPI:  # fmt: skip
    """The app with its models loaded (once, here), its labels file read and its corrections database open."""
    configure_threads()
    classifiers = load_classifiers(models, select_device(device))
    labeler = Labeler(classifiers, crop, detect)
    db_path = Path(db) if db else default_db(labels)
    store = CorrectionStore(db_path)
    table = ReviewTable(labels, classifiers.taxonomy, classifiers.heads, store) if labels else None
    thumbs = db_path.with_name(db_path.stem + ".thumbs")
    predictor = Predictor(labeler)
    max_bytes = int(max_upload_mb * 1024 * 1024)
    taxonomy = classifiers.taxonomy

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        predictor.close()
        store.close()

    app = FastAPI(title="hierarchy", docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.store, app.state.table = store, table
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.middleware("http")
    async def check_token(request: Request, call_next):
        path = request.url.path
        guarded = token and (path == "/" or path.startswith(PROTECTED))
        given = request.query_params.get("token") or request.cookies.get(TOKEN_COOKIE) or ""
        if guarded and not secrets.compare_digest(given.encode(), token.encode()):
            return JSONResponse({"detail": "this server needs its token: open the address `hierarchy serve` "
                                           "printed (it ends in ?token=…)"}, status_code=401)  # fmt: skip
        if request.method == "POST" and int(request.headers.get("content-length") or 0) > max_bytes + 65536:
            return JSONResponse({"detail": f"the upload is over {max_upload_mb:g} MB: send a smaller file"}, 413)
        response = await call_next(request)
        if token and request.query_params.get("token") == token:
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
        return response

    @app.exception_handler(UserError)
    async def user_error(request: Request, exc: UserError):
        return JSONResponse({"detail": str(exc)}, status_code=413 if isinstance(exc, TooLarge) else 400)

    @app.get("/", include_in_schema=False)
    def photo_page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/review", include_in_schema=False)
    def review_page() -> FileResponse:
        return FileResponse(STATIC / "review.html")

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok", "models": models, "rows": len(table) if table else 0, "db": str(db_path),
                "predicted": {"photos": predictor.photos, "batches": predictor.batches}}  # fmt: skip

    @app.get("/api/info")
    def info() -> dict:
        parents = {f: taxonomy.coarse[c] for f, c in zip(taxonomy.fine, taxonomy.parents)} if taxonomy.parents else {}
        heads = table.heads if table else classifiers.heads
        return {
            "heads": heads, "names": {h: taxonomy.names(h) for h in heads}, "parents": parents, "models": models,
            "crop_mode": labeler.mode, "labels": str(table.path) if table else None,
            "rows": len(table) if table else 0, "unreadable": table.errors if table else 0, "db": str(db_path),
        }  # fmt: skip

    @app.post("/api/predict")
    async def predict(file: Annotated[UploadFile, File()], box: Annotated[str, Form()] = "") -> dict:
        data = await file.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise TooLarge(f"the upload is over {max_upload_mb:g} MB: send a smaller file")
        image, scale = await asyncio.to_thread(decode_upload, data, max_pixels, labeler.max_side)
        width, height = round(image.width * scale), round(image.height * scale)
        regions = await asyncio.wrap_future(predictor.submit(image, scale, parse_box(box, width, height)))
        return {"width": width, "height": height, "regions": regions}

    def need_table() -> ReviewTable:
        if table is None:
            raise HTTPException(404, "no labels file loaded: start with `hierarchy serve --model RUN --labels FILE`")
        return table

    @app.get("/api/rows")
    def rows(
        head: str = "", label: str = "", min_prob: float = 0.0, max_prob: float = 1.0, status: str = "all",
        sort: str = "prob_asc", offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=PAGE_LIMIT)] = 60,
    ) -> dict:  # fmt: skip
        t = need_table()
        head = head or ("fine" if "fine" in t.heads else t.heads[0])
        return t.page(head, label, min_prob, max_prob, status, sort, offset, limit)

    @app.post("/api/corrections")
    def correct(change: CorrectionIn) -> dict:
        t = need_table()
        try:
            return t.correct(change.row, change.head, change.action, change.label)
        except KeyError:
            raise HTTPException(404, f"row {change.row} is not in {t.path}") from None

    @app.get("/api/export")
    def export() -> Response:
        out = db_path.with_name(db_path.stem + ".manifest.csv")
        n = export_manifest(store, out)
        log.info("exported %d corrected rows to %s", n, out)
        return FileResponse(out, media_type="text/csv", filename="corrections.csv")

    @app.get("/thumb/{row}")
    def thumbnail(row: int) -> Response:
        t = need_table()
        if not 0 <= row < len(t):
            raise HTTPException(404, f"row {row} is not in {t.path}")
        try:
            data = t.thumbnail(row, thumbs)
        except FileNotFoundError as exc:
            raise HTTPException(404, str(exc)) from None
        except Exception as exc:  # unreadable now (changed on disk since labelling)
            raise HTTPException(404, f"the photo cannot be read: {type(exc).__name__}") from None
        return StreamingResponse(io.BytesIO(data), media_type="image/jpeg",
                                 headers={"Cache-Control": "max-age=3600"})  # fmt: skip

    @app.get("/files/{root}/{path:path}")
    def photo(root: int, path: str) -> FileResponse:
        file = need_table().photo_file(root, path)
        if file is None:
            raise HTTPException(404, "no such photo in the labels file")
        return FileResponse(file)

    @app.exception_handler(404)
    async def not_found(request: Request, exc: HTTPException):
        detail = getattr(exc, "detail", None) or "not found"
        if request.url.path.startswith(("/api/", "/files/", "/thumb/")) or "text/html" not in request.headers.get(
            "accept", ""
        ):
            return JSONResponse({"detail": detail}, status_code=404)
        return HTMLResponse(NOT_FOUND_PAGE.format(detail=html.escape(str(detail))), status_code=404)

    return app


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


def default_db(labels: str | None) -> Path:
    """Beside the labels file (``labels.parquet`` → ``labels.corrections.sqlite``), else under artifacts/serve."""
    if labels:
        path = Path(labels)
        return path.with_name(path.stem + ".corrections.sqlite")
    return Path("artifacts/serve/corrections.sqlite")


NOT_FOUND_PAGE = """<!doctype html><meta charset="utf-8"><title>Not found · hierarchy</title>
<link rel="stylesheet" href="/static/style.css"><main class="message"><h1>Not found</h1><p>{detail}</p>
<p><a href="/">One photo</a> · <a href="/review">Review</a></p></main>"""
