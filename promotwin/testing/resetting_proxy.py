"""A real TCP proxy that forwards a create to the ERP, then resets the client's connection.

Between an ERP client and a real server on 127.0.0.1: every byte is forwarded both ways, except
that the first ``resets`` requests containing ``marker`` (e.g. ``purchase.purchase.create``) are
forwarded and the server's answer is awaited (the ERP has saved the record) but swallowed; the
client's connection is then reset (RST). What a client sees when a network drops at the worst
moment: it cannot know whether its call took effect.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from dataclasses import dataclass, field


@dataclass
class ResettingProxy:
    target_port: int
    marker: bytes
    resets: int = 1
    port: int = 0
    forwarded: int = 0  # marked requests forwarded whose answer is (to be) swallowed
    reset_done: int = 0  # client connections reset after the server answered
    _server: socket.socket | None = None
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> ResettingProxy:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self._spawn(self._accept)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    def _spawn(self, target: object, *args: object) -> None:
        t = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        t.start()
        self._threads.append(t)

    def _accept(self) -> None:
        while self._server is not None:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            swallow, reset = threading.Event(), threading.Event()
            self._spawn(self._to_server, client, upstream, swallow, reset)
            self._spawn(self._to_client, upstream, client, swallow, reset)

    def _to_server(
        self,
        client: socket.socket,
        upstream: socket.socket,
        swallow: threading.Event,
        reset: threading.Event,
    ) -> None:
        """Client -> server; after a swallowed answer, this thread (the only one left using the
        client socket) closes it with linger 0: the kernel sends RST, not FIN."""
        window = b""
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                window = (window + data)[-65536:]
                if self.marker in window:
                    window = b""
                    with self._lock:
                        if self.forwarded < self.resets:
                            swallow.set()
                            self.forwarded += 1
                upstream.sendall(data)
        if reset.is_set():
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()
            with self._lock:
                self.reset_done += 1
            return
        with contextlib.suppress(OSError):
            upstream.shutdown(socket.SHUT_WR)

    def _to_client(
        self,
        upstream: socket.socket,
        client: socket.socket,
        swallow: threading.Event,
        reset: threading.Event,
    ) -> None:
        with contextlib.suppress(OSError):
            while data := upstream.recv(65536):
                if swallow.is_set():  # the ERP answered: it saved the record. Drop the answer.
                    reset.set()
                    client.shutdown(socket.SHUT_RD)  # wakes the other thread's recv
                    upstream.close()
                    return
                client.sendall(data)
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_WR)
