"""Answers to the queue's questions, kept in SQLite (the same file and the same guarantees as the review's
corrections: WAL, ``synchronous=FULL``, committed before ``add`` returns).

One row per answer, never changed: the image (its crop key, file and box), the kind of question and the level it
asked about, what was shown (the guess, or the candidates), the answer, the label it gives, the seconds between
showing and answering, the model version that asked and who answered. The history stays; what an image's label is
comes from folding its answers in order (``resolve``), so a later answer wins and both are kept.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from hierarchy.database import open_database

SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    item TEXT NOT NULL,          -- the image's crop key (infer/rows.py)
    file TEXT NOT NULL,
    x1 REAL, y1 REAL, x2 REAL, y2 REAL,   -- NULL for a whole photo
    kind TEXT NOT NULL,          -- confirm | choose | coarse
    level TEXT NOT NULL,         -- fine | coarse: the level the answer is about
    shown TEXT NOT NULL,         -- JSON list: the guess (confirm) or the candidates (choose)
    answer TEXT NOT NULL,        -- yes | no | a class name | skip
    label TEXT,                  -- the class the answer gives (yes: the guess); NULL for no and skip
    seconds REAL,                -- from showing the question to answering it
    model TEXT NOT NULL,         -- the model version that asked
    client TEXT NOT NULL DEFAULT '',
    at TEXT NOT NULL             -- UTC, ISO 8601
);
CREATE INDEX IF NOT EXISTS answers_item ON answers (item, id);
"""
KINDS = ("confirm", "choose", "coarse")
LEVELS = ("fine", "coarse")


@dataclass(frozen=True)
class Answer:
    item: str
    file: str
    box: tuple[float, float, float, float] | None
    kind: str
    level: str
    shown: list[str]
    answer: str
    label: str | None
    seconds: float | None
    model: str
    client: str = ""


@dataclass
class Resolved:
    """What an image's answers say, folded in order: its fine label, its group, the guesses ruled out."""

    fine: str | None = None
    coarse: str | None = None
    excluded: set[str] = field(default_factory=set)


class AnswerStore:
    """The answers table; one connection shared by the server's threads behind a lock."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.db = open_database(self.path, SCHEMA, "an answers")
        self.lock = threading.Lock()

    def add(self, answer: Answer) -> int:
        """Store one answer, committed and synced before returning its id."""
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        row = (answer.item, answer.file, *(answer.box or (None,) * 4), answer.kind, answer.level,
               json.dumps(answer.shown, ensure_ascii=False), answer.answer, answer.label, answer.seconds,
               answer.model, answer.client, at)  # fmt: skip
        with self.lock:
            cursor = self.db.execute(
                "INSERT INTO answers (item, file, x1, y1, x2, y2, kind, level, shown, answer, label, seconds, model, "
                "client, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            return int(cursor.lastrowid)

    def rows(self) -> list[dict]:
        """Every answer, oldest first."""
        with self.lock:
            cursor = self.db.execute("SELECT * FROM answers ORDER BY id")
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]

    def count(self) -> int:
        with self.lock:
            return int(self.db.execute("SELECT COUNT(*) FROM answers").fetchone()[0])

    def close(self) -> None:
        with self.lock:
            self.db.close()


def resolve(rows: list[dict], parent_of: dict[str, str]) -> dict[str, Resolved]:
    """Fold every image's answers in order (``parent_of``: fine name → group name). A fine label sets the group
    too; a group that contradicts the fine label clears it, and a group of one fine label sets it; a "no" rules its
    guess out (and clears it if it was the fine label); a later answer at a level replaces an earlier one."""
    found: dict[str, Resolved] = {}
    for row in rows:
        state = found.setdefault(row["item"], Resolved())
        label = row["label"]
        if row["answer"] == "no":
            guess = json.loads(row["shown"])[0]
            state.excluded.add(guess)
            if state.fine == guess:
                state.fine = None
        elif label is None:  # skip
            continue
        elif row["level"] == "fine":
            state.fine, state.coarse = label, parent_of[label]
            state.excluded.discard(label)
        else:
            state.coarse = label
            if state.fine is not None and parent_of[state.fine] != label:
                state.fine = None
            children = [fine for fine, group in parent_of.items() if group == label]
            if len(children) == 1:  # a group of one fine label names it
                state.fine = children[0]
    return found


def mean_seconds(rows: list[dict]) -> dict[str, float]:
    """Mean seconds per answer by kind: the measured cost of each question type."""
    total: dict[str, list[float]] = {}
    for row in rows:
        if row["seconds"] is not None:
            total.setdefault(row["kind"], []).append(float(row["seconds"]))
    return {kind: round(sum(v) / len(v), 2) for kind, v in total.items()}
