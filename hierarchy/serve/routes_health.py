"""What is loaded: ``GET /healthz`` (liveness, counters) and ``GET /api/info`` (heads, class names, fine → coarse
parents, the labels file), which both pages read first."""

from __future__ import annotations

from fastapi import APIRouter

from hierarchy.serve.state import State

router = APIRouter()


@router.get("/healthz")
def healthz(state: State) -> dict:
    table, predictor = state.table, state.predictor
    return {"status": "ok", "models": state.models, "rows": len(table) if table else 0, "db": str(state.db_path),
            "predicted": {"photos": predictor.photos, "batches": predictor.batches}}  # fmt: skip


@router.get("/api/info")
def info(state: State) -> dict:
    table, labeler = state.table, state.predictor.labeler
    taxonomy = labeler.classifiers.taxonomy
    parents = {f: taxonomy.coarse[c] for f, c in zip(taxonomy.fine, taxonomy.parents)} if taxonomy.parents else {}
    heads = table.heads if table else labeler.classifiers.heads
    return {
        "heads": heads, "names": {h: taxonomy.names(h) for h in heads}, "parents": parents, "models": state.models,
        "crop_mode": labeler.mode, "labels": str(table.path) if table else None,
        "rows": len(table) if table else 0, "unreadable": table.errors if table else 0, "db": str(state.db_path),
    }  # fmt: skip
