"""Start ``hierarchy serve`` in a child process and talk to its API over HTTP: the client that benchmarks/serve.py
and the server's tests (tests/test_serve*.py) drive it with. Imports nothing of ours, so both import it as
``benchmarks.serve_process`` from the checkout's root."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``hierarchy serve ARGS`` in a child process, started and answering ``/healthz``; requests go over raw HTTP,
    the path sent exactly as written (tests send ``../`` and encoded tricks through it)."""

    def __init__(self, *args: str, cwd: Path | None = None, threads: int | None = 1) -> None:
        """``threads``: torch's threads in the server (``OMP_NUM_THREADS``); None = torch's own choice."""
        self.port = free_port()
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        if threads is not None:
            env["OMP_NUM_THREADS"] = str(threads)
        # Output goes to files, not pipes: a pipe nobody reads fills up and stalls a long-running server.
        self.out, self.err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hierarchy", "serve", "--port", str(self.port), *args],
            cwd=cwd, env=env, stdout=self.out, stderr=self.err, text=True,
        )  # fmt: skip
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hierarchy serve exited: {self.output()}")
            try:
                if self.get("/healthz")[0] == 200:
                    return
            except OSError:
                time.sleep(0.3)
        self.stop(signal.SIGKILL)
        raise RuntimeError("hierarchy serve did not answer /healthz in 120 s")

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        conn.close()
        kind = response.getheader("content-type") or ""
        return response.status, json.loads(data) if kind.startswith("application/json") else data

    def get(self, path: str):
        return self.request("GET", path)

    def post_json(self, path: str, payload: dict):
        return self.request("POST", path, json.dumps(payload).encode(), {"Content-Type": "application/json"})

    def upload(self, data: bytes, box: str = "", name: str = "photo.png"):
        boundary = "hierarchy-test-boundary"
        parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
                 f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n"]  # fmt: skip
        if box:
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="box"\r\n\r\n{box}\r\n'.encode())
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        return self.request("POST", "/api/predict", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})

    def output(self) -> tuple[str, str]:
        """What the server printed so far: (stdout, stderr)."""
        texts = []
        for f in (self.out, self.err):
            f.seek(0)
            texts.append(f.read())
        return texts[0], texts[1]

    def stop(self, sig: int = signal.SIGTERM) -> tuple[str, str]:
        """Stop the server (SIGKILL: as a crash would) and return its (stdout, stderr)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(timeout=60)
        return self.output()
