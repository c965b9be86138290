"""A TCP proxy in front of a real server, which a test can cut: the broker "goes away" for the clients
behind it, while the machine's RabbitMQ (shared with other tests) is never restarted.

``cut()`` closes every connection in flight (both ends see a reset) and refuses new ones until
``restore()``: what clients see when a broker restarts or a network path drops.
"""

from __future__ import annotations

import contextlib
import socket
import threading

from tests.fakes.base import LOOPBACK


class TcpProxy:
    """127.0.0.1:<port> -> `target`; a daemon thread per accepted connection and direction."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server((LOOPBACK, 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._live: set[socket.socket] = set()
        self._cut = False
        self._closed = False
        self.accepted = 0  # connections forwarded (refused ones while cut are not counted)

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def start(self) -> TcpProxy:
        threading.Thread(target=self._accept, daemon=True, name=f"tcp-proxy-{self.port}").start()
        return self

    def cut(self) -> None:
        """Drop every live connection with a reset and refuse new ones until restore()."""
        with self._lock:
            self._cut = True
            live, self._live = self._live, set()
        for sock in live:
            _reset(sock)

    def restore(self) -> None:
        with self._lock:
            self._cut = False

    def close(self) -> None:
        self._closed = True
        self.cut()
        with contextlib.suppress(OSError):
            self._listener.close()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                refused = self._cut
            if refused:
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self._live |= {client, upstream}
                self.accepted += 1
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                _reset(sock)
            with self._lock:
                self._live -= {src, dst}


def _reset(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0), as a dropped path or a killed broker looks to the other end."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    with contextlib.suppress(OSError):
        sock.close()
