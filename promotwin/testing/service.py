"""A real ``twin serve`` process on 127.0.0.1 for the service tests and its benchmark: started
as its own process group on a free port, ready once ``/v1/health`` answers, stopped by its id
(``kill()`` is kill -9 of the group: the server and its planning process, as a crash would)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        """kill -9 of the server and its planning process; waits until they are gone."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        """A clean stop (SIGTERM: uvicorn finishes its requests), kill -9 after 20 s."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        with contextlib.suppress(ProcessLookupError):  # the planning process, if it is left
            os.killpg(self.process.pid, signal.SIGKILL)


def start_server(
    store: Path | str,
    scenario: str | None = "appliance_promo",
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 120.0,
    log: Path | None = None,
) -> Server:
    """``twin serve [--scenario SCENARIO] --store STORE ARGS`` on a free port, once healthy
    (no ``--scenario``: ARGS give ``--config`` with one)."""
    import httpx

    port = free_port()
    log = log or Path(str(store) + f".{port}.log")
    command = [sys.executable, "-m", "promotwin.cli.main", "serve"]
    command += ["--scenario", scenario] if scenario is not None else []
    command += ["--store", str(store), "--port", str(port), *args]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    server = Server(process, port, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"twin serve exited with {process.returncode}: {log.read_text()}")
        try:
            if httpx.get(f"{server.url}/v1/health", timeout=1.0).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"twin serve did not answer within {timeout:.0f} s: {log.read_text()}")
