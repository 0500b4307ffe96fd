"""*Train on my answers*: ``hierarchy retrain`` in a child process, watched from the server.

The child runs at a lower priority (``nice``) so the pages and the answers keep their speed, and it dies with the
server (Linux: the parent-death signal), so a server killed mid-retrain comes back with the model it had: only a
finished, accepted version is ever made current, by the child itself, atomically. When the child ends, the server
loads the current version and re-ranks the queue with it.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from hierarchy.active.retrain import next_version, versions_dir
from hierarchy.errors import UserError

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In the child, before exec: lower priority; on Linux, SIGTERM when the server goes (killed or not)."""
    os.nice(10)
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:  # not Linux: the child may outlive a killed server, but still never swaps a model in itself
        pass


class Retrainer:
    def __init__(self, model: str, db: Path, settings: list[str], device: str, on_done: Callable[[dict], None]) -> None:
        self.model, self.db, self.settings, self.device, self.on_done = model, db, settings, device, on_done
        self.models = versions_dir(db)
        self.lock = threading.Lock()
        self.process: subprocess.Popen | None = None
        self.folder: Path | None = None
        self.last: dict | None = None  # the record of the last version this server trained
        self.error = ""

    def start(self) -> dict:
        with self.lock:
            if self.process is not None and self.process.poll() is None:
                raise UserError(f"a retrain is running already ({self.folder.name}): wait for it to finish")
            self.models.mkdir(parents=True, exist_ok=True)
            self.folder = next_version(self.models)
            self.folder.mkdir()
            self.error = ""
            cmd = [sys.executable, "-m", "hierarchy", "retrain", "--model", self.model, "--db", str(self.db),
                   "--version-dir", str(self.folder), "--device", self.device, *self.settings]  # fmt: skip
            log_file = open(self.folder / "retrain.log", "w")  # noqa: SIM115 (the child writes it until it ends)
            self.process = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
            log_file.close()
            threading.Thread(target=self.watch, args=(self.process, self.folder), daemon=True).start()
            return {"version": self.folder.name, "started": True}

    def watch(self, process: subprocess.Popen, folder: Path) -> None:
        code = process.wait()
        record_file = folder / "version.json"
        if code != 0 or not record_file.exists():
            tail = (folder / "retrain.log").read_text(errors="replace").strip().splitlines()[-3:]
            self.error = f"retrain {folder.name} failed (exit {code}): " + " / ".join(tail)
            log.warning(self.error)
            return
        record = json.loads(record_file.read_text(encoding="utf-8"))
        self.last = record
        try:
            self.on_done(record)
        except Exception as exc:  # the new model could not be loaded: keep serving the one we have
            self.error = f"{folder.name} trained but could not be loaded: {exc}"
            log.exception(self.error)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def status(self) -> dict:
        progress = {}
        if self.folder is not None and (self.folder / "progress.json").exists():
            try:
                progress = json.loads((self.folder / "progress.json").read_text(encoding="utf-8"))
            except (OSError, ValueError):  # being replaced this instant
                progress = {}
        return {"running": self.running(), "version": self.folder.name if self.folder else None,
                "progress": progress, "last": self.last, "error": self.error}  # fmt: skip

    def versions(self) -> list[dict]:
        """Every version on disk with its record (none yet for one in training or one that failed)."""
        found = []
        for folder in sorted(self.models.glob("v[0-9][0-9][0-9]")):
            record_file = folder / "version.json"
            record = json.loads(record_file.read_text(encoding="utf-8")) if record_file.exists() else {}
            found.append({"version": folder.name, **record})
        return found

    def stop(self) -> None:
        if self.running():
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()

