"""Corrections: ``POST /api/corrections`` (stored before the answer, then the row as it reads now) and
``GET /api/export`` (every correction as a CSV manifest for ``data.format=csv``)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel

from hierarchy.serve.corrections import export_manifest
from hierarchy.serve.state import State

log = logging.getLogger(__name__)
router = APIRouter()


class CorrectionIn(BaseModel):
    row: int
    head: str
    action: str = "set"
    label: str = ""


@router.post("/api/corrections")
def correct(state: State, change: CorrectionIn) -> dict:
    t = state.need_table()
    try:
        return t.correct(change.row, change.head, change.action, change.label)
    except KeyError:
        raise HTTPException(404, f"row {change.row} is not in {t.path}") from None


@router.get("/api/export")
def export(state: State) -> Response:
    out = state.db_path.with_name(state.db_path.stem + ".manifest.csv")
    n = export_manifest(state.store, out)
    log.info("exported %d corrected rows to %s", n, out)
    return FileResponse(out, media_type="text/csv", filename="corrections.csv")
