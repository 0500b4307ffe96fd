"""The question queue of ``serve --pool``: ``GET /label`` (the page), ``GET /api/queue/next?n=&skip=`` (the next
questions), ``POST /api/answers`` (one answer, stored before the reply; a "no" returns the choose that follows it),
``GET /pool/{index}`` (an item's image), ``GET /api/queue/status`` (counts, model, retrain progress, versions) and
``POST /api/retrain`` (*Train on my answers*)."""

from __future__ import annotations

import io
from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Query, Request
from fastapi.responses import FileResponse, StreamingResponse

from hierarchy.serve.review import crop_jpeg
from hierarchy.serve.state import STATIC, State

IMAGE_SIDE = 384
router = APIRouter()


@router.get("/label", include_in_schema=False)
def label_page() -> FileResponse:
    return FileResponse(STATIC / "label.html")


@router.get("/api/queue/next")
def next_questions(state: State, n: Annotated[int, Query(ge=1, le=50)] = 1, skip: str = "") -> dict:
    queue = state.need_queue().queue
    with_skip = {key for key in skip.split("\n") if key}
    return {"questions": queue.next(n, with_skip), "status": queue.status()}


@router.post("/api/answers")
def answer(state: State, request: Request, payload: Annotated[dict, Body()]) -> dict:
    queue = state.need_queue().queue
    client = request.client.host if request.client else ""
    return queue.answer(payload, client)


@router.get("/pool/{index}")
def pool_image(state: State, index: int) -> StreamingResponse:
    queue = state.need_queue().queue
    if not 0 <= index < len(queue.items):
        raise HTTPException(404, f"item {index} is not in the pool")
    item = queue.items[index]
    try:
        data = crop_jpeg(item.file, item.box, IMAGE_SIDE)
    except Exception as exc:  # gone or broken since the pool was read
        raise HTTPException(404, f"{item.name} cannot be read now: {type(exc).__name__}") from None
    return StreamingResponse(io.BytesIO(data), media_type="image/jpeg", headers={"Cache-Control": "max-age=600"})


@router.get("/api/queue/status")
def status(state: State) -> dict:
    pool = state.need_queue()
    return {**pool.queue.status(), "retrain": pool.retrainer.status(), "versions": pool.retrainer.versions(),
            "broken": pool.queue.scored.broken if pool.queue.scored else {}}  # fmt: skip


@router.post("/api/retrain")
def retrain(state: State) -> dict:
    pool = state.need_queue()
    if pool.queue.store.count() == 0:
        raise HTTPException(409, "no answers yet: answer some questions first")
    return pool.retrainer.start()
