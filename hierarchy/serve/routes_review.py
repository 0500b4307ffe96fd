"""The review of a labels file: the page, ``GET /api/rows`` (one page of the grid) and ``GET /thumb/{row}``."""

from __future__ import annotations

import io
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse, Response, StreamingResponse

from hierarchy.serve.state import STATIC, State

PAGE_LIMIT = 500  # rows per page at most
router = APIRouter()


@router.get("/review", include_in_schema=False)
def review_page() -> FileResponse:
    return FileResponse(STATIC / "review.html")


@router.get("/api/rows")
def rows(
    state: State, head: str = "", label: str = "", min_prob: float = 0.0, max_prob: float = 1.0, status: str = "all",
    sort: str = "prob_asc", offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=PAGE_LIMIT)] = 60,
) -> dict:  # fmt: skip
    t = state.need_table()
    head = head or ("fine" if "fine" in t.heads else t.heads[0])
    return t.page(head, label, min_prob, max_prob, status, sort, offset, limit)


@router.get("/thumb/{row}")
def thumbnail(state: State, row: int) -> Response:
    t = state.need_table()
    if not 0 <= row < len(t):
        raise HTTPException(404, f"row {row} is not in {t.path}")
    try:
        data = t.thumbnail(row, state.thumbs)
    except FileNotFoundError as exc:
        raise HTTPException(404, str(exc)) from None
    except Exception as exc:  # unreadable now (changed on disk since labelling)
        raise HTTPException(404, f"the photo cannot be read: {type(exc).__name__}") from None
    return StreamingResponse(io.BytesIO(data), media_type="image/jpeg",
                             headers={"Cache-Control": "max-age=3600"})  # fmt: skip
