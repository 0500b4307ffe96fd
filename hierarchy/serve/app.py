"""``hierarchy serve``: the web app — one photo (detect, crop, top-5 per head), the review of a labels file
(filter, sort, correct with the keyboard, export the corrections as a training manifest) and the question queue
over an unlabelled pool (answer with the keyboard, retrain in place).

The pages are static files (``static/``); they talk to a JSON API with ``fetch``. Routes, one router per job:

- ``routes_photo``: ``GET /`` (the page); ``POST /api/predict`` (multipart ``file``, optional ``box=x1,y1,x2,y2``
  in the photo's pixels): regions with every head's top 5; ``GET /files/{root}/{path}``: a photo the labels file
  lists.
- ``routes_review``: ``GET /review`` (the page); ``GET /api/rows?head=&label=&min_prob=&max_prob=&status=all|todo|
  done&sort=prob_asc|prob_desc|path&offset=&limit=``: one page of the review grid; ``GET /thumb/{row}``: a crop's
  thumbnail.
- ``routes_corrections``: ``POST /api/corrections`` (JSON ``{"row", "head", "action": "set"|"accept", "label"}``):
  stored, then the row; ``GET /api/export``: the corrections as a CSV manifest for ``data.format=csv``.
- ``routes_health``: ``GET /healthz``: liveness, what is loaded; ``GET /api/info``: heads, class names, fine →
  coarse parents, the loaded labels file.
- ``routes_queue`` (with ``--pool``): ``GET /label`` (the page); ``GET /api/queue/next``, ``POST /api/answers``,
  ``GET /pool/{index}``, ``GET /api/queue/status``, ``POST /api/retrain``: the question queue (hierarchy.active).

What they share is one ``state.ServeState`` on ``app.state.serve``. Here: loading it, the token and upload-size
check in front of every route, and the error answers: every error a user can cause answers
``{"detail": "what went wrong and what to do"}`` with a 4xx status (a 404 asked for by a browser, a page).
"""

from __future__ import annotations

import contextlib
import html
import secrets
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from hierarchy.active.commands import default_db as default_pool_db
from hierarchy.active.commands import open_queue, version_name
from hierarchy.active.retrain import current_model, versions_dir
from hierarchy.config import DetectConfig, queue_options
from hierarchy.errors import UserError
from hierarchy.infer.labeler import Labeler
from hierarchy.infer.load import load_classifier
from hierarchy.runner import configure_threads, select_device
from hierarchy.serve import routes_corrections, routes_health, routes_photo, routes_queue, routes_review
from hierarchy.serve.corrections import CorrectionStore
from hierarchy.serve.predictor import Predictor, TooLarge
from hierarchy.serve.retrainer import Retrainer
from hierarchy.serve.review import ReviewTable
from hierarchy.serve.state import STATIC, PoolState, ServeState

TOKEN_COOKIE = "hierarchy_token"
PROTECTED = (
    "/api/",
    "/files/",
    "/thumb/",
    "/review",
    "/label",
    "/pool/",
)  # what --token guards ("/" too, see check_token)


def build_app(
    models: list[str], labels: str | None = None, db: str | None = None, token: str = "", device: str = "auto",
    max_upload_mb: float = 20.0, max_pixels: int = 50_000_000, crop: str = "", detect: DetectConfig | None = None,
    precision: str = "fp32", pool: list[str] | None = None, queue_settings: list[str] | None = None,
    groups: str | None = None,
) -> FastAPI:  # fmt: skip
    """The app with its models loaded (once, here), its labels file read and its corrections database open; with
    ``pool``, the question queue over it (answers in ``db``, else beside the pool) scored by its current model."""
    configure_threads()
    classifiers = load_classifier(models, select_device(device), precision=precision)
    labeler = Labeler(classifiers, crop, detect)
    db_path = Path(db) if db else default_db(labels)
    store = CorrectionStore(db_path)
    table = ReviewTable(labels, classifiers.taxonomy, classifiers.heads, store) if labels else None
    state = ServeState(models, Predictor(labeler), store, table, db_path, token, max_upload_mb, max_pixels)
    if pool:
        state.pool = open_pool(models, pool, Path(db) if db else default_pool_db(pool), queue_settings or [], device,
                               precision, groups)  # fmt: skip

    app = FastAPI(title="hierarchy", docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.serve = state
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.middleware("http")(check_token)
    app.add_exception_handler(UserError, user_error)
    app.add_exception_handler(404, not_found)
    for routes in (routes_photo, routes_review, routes_corrections, routes_health, routes_queue):
        app.include_router(routes.router)
    return app


def open_pool(models: list[str], pool: list[str], db: Path, settings: list[str], device: str, precision: str,
              groups: str | None = None) -> PoolState:  # fmt: skip
    """The queue scored by the current version, and the retrainer that makes new ones (and re-ranks after)."""
    queue = open_queue(models, pool, db, queue_options(settings), device, precision, groups)

    def swap(record: dict) -> None:
        if record.get("accepted"):
            current = current_model(versions_dir(db), models[0])
            classifiers = load_classifier([current], select_device(device), precision=precision)
            queue.rescore(classifiers, version_name(current, models[0]))

    return PoolState(queue, Retrainer(models[0], db, settings, device, swap))


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI):
    yield
    app.state.serve.close()


async def check_token(request: Request, call_next):
    """With ``--token``: the pages and the API only for requests that carry it (query once, then a cookie);
    every POST: no body over the upload limit."""
    state: ServeState = request.app.state.serve
    token, path = state.token, request.url.path
    guarded = token and (path == "/" or path.startswith(PROTECTED))
    given = request.query_params.get("token") or request.cookies.get(TOKEN_COOKIE) or ""
    if guarded and not secrets.compare_digest(given.encode(), token.encode()):
        return JSONResponse({"detail": "this server needs its token: open the address `hierarchy serve` "
                                       "printed (it ends in ?token=…)"}, status_code=401)  # fmt: skip
    if request.method == "POST" and int(request.headers.get("content-length") or 0) > state.max_bytes + 65536:
        return JSONResponse({"detail": f"the upload is over {state.max_upload_mb:g} MB: send a smaller file"}, 413)
    response = await call_next(request)
    if token and request.query_params.get("token") == token:
        response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
    return response


async def user_error(request: Request, exc: UserError):
    return JSONResponse({"detail": str(exc)}, status_code=413 if isinstance(exc, TooLarge) else 400)


async def not_found(request: Request, exc: HTTPException):
    detail = getattr(exc, "detail", None) or "not found"
    if request.url.path.startswith(("/api/", "/files/", "/thumb/", "/pool/")) or "text/html" not in request.headers.get(
        "accept", ""
    ):
        return JSONResponse({"detail": detail}, status_code=404)
    return HTMLResponse(NOT_FOUND_PAGE.format(detail=html.escape(str(detail))), status_code=404)


def default_db(labels: str | None) -> Path:
    """Beside the labels file (``labels.parquet`` → ``labels.corrections.sqlite``), else under artifacts/serve."""
    if labels:
        path = Path(labels)
        return path.with_name(path.stem + ".corrections.sqlite")
    return Path("artifacts/serve/corrections.sqlite")


NOT_FOUND_PAGE = """<!doctype html><meta charset="utf-8"><title>Not found · hierarchy</title>
<link rel="stylesheet" href="/static/style.css"><main class="message"><h1>Not found</h1><p>{detail}</p>
<p><a href="/">One photo</a> · <a href="/review">Review</a> · <a href="/label">Label</a></p></main>"""
