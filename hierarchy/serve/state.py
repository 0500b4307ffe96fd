"""What the routes of ``hierarchy serve`` share: the models, the labels file and the corrections database, loaded
once by ``build_app`` into one ``ServeState`` on ``app.state.serve``; a route asks for it with a ``State`` parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from hierarchy.active.queue import Queue
from hierarchy.serve.corrections import CorrectionStore
from hierarchy.serve.predictor import Predictor
from hierarchy.serve.retrainer import Retrainer
from hierarchy.serve.review import ReviewTable

STATIC = Path(str(resources.files("hierarchy.serve") / "static"))


@dataclass
class PoolState:
    """``--pool``: the question queue and the retrains of its model."""

    queue: Queue
    retrainer: Retrainer

    def close(self) -> None:
        self.retrainer.stop()
        self.queue.store.close()


@dataclass
class ServeState:
    """The loaded app: ``predictor`` holds the labeler (classifiers, crop mode); ``table`` is None without --labels."""

    models: list[str]  # --model, as given
    predictor: Predictor
    store: CorrectionStore
    table: ReviewTable | None
    db_path: Path
    token: str  # "" = open
    max_upload_mb: float
    max_pixels: int
    pool: PoolState | None = None

    @property
    def max_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def thumbs(self) -> Path:
        """The thumbnail cache beside the database (``labels.corrections.thumbs``)."""
        return self.db_path.with_name(self.db_path.stem + ".thumbs")

    def need_table(self) -> ReviewTable:
        """The labels file; a 404 that says how to load one when the server runs without it.

        Called in the route, not as a dependency, so a malformed request still answers 422 before this 404.
        """
        if self.table is None:
            raise HTTPException(404, "no labels file loaded: start with `hierarchy serve --model RUN --labels FILE`")
        return self.table

    def need_queue(self) -> PoolState:
        if self.pool is None:
            raise HTTPException(404, "no pool loaded: start with `hierarchy serve --model RUN --pool PHOTOS/`")
        return self.pool

    def close(self) -> None:
        self.predictor.close()
        self.store.close()
        if self.pool is not None:
            self.pool.close()


def get_state(request: Request) -> ServeState:
    return request.app.state.serve


State = Annotated[ServeState, Depends(get_state)]
