"""The one way the SQLite files of the review and the queue (corrections, answers) are opened: WAL, so readers
never wait on a writer, and ``synchronous=FULL``, so what a write returned from is on disk before the page hears
back; one connection for the server's threads, used behind a lock."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from hierarchy.errors import UserError


def open_database(path: Path, schema: str, what: str) -> sqlite3.Connection:
    """Open (or create) ``path`` with ``schema``; a file that is not such a database is a UserError naming ``what``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(schema)
    except sqlite3.DatabaseError as exc:
        raise UserError(f"{path} is not {what} database ({exc}): choose another --db") from None
    return db
